"""Reading request bodies within the size limit, without trusting
Content-Length, and without waiting for ever on a client that stopped sending."""

from collections.abc import AsyncIterator, Iterable
from itertools import chain
from typing import Any

import anyio
import orjson
from starlette.requests import Request

from arrayq.api.errors import BadJson, JsonTooDeep, UnsupportedMediaType
from arrayq.storage.errors import BodyTimeout, TooLarge


def check_declared_length(request: Request, limit: int) -> None:
    """413 for a Content-Length over `limit`, before a byte of the body is read."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes is over the limit of {limit}")


async def body_chunks(request: Request, idle_seconds: float) -> AsyncIterator[bytes]:
    """The body as it arrives; `BodyTimeout` when nothing came for `idle_seconds`."""
    stream = request.stream()
    while True:
        with anyio.move_on_after(idle_seconds) as waited:
            chunk = await anext(stream, None)
        if waited.cancelled_caught:
            raise BodyTimeout(f"the request body sent nothing for {idle_seconds:g} s")
        if chunk is None:
            return
        if chunk:
            yield chunk


async def read_limited(request: Request, limit: int, *, idle_seconds: float = 30.0) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes."""
    check_declared_length(request, limit)
    body = bytearray()
    async for chunk in body_chunks(request, idle_seconds):
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body is over the limit of {limit} bytes")
    return bytes(body)


async def read_json(
    request: Request,
    limit: int,
    *,
    max_depth: int,
    max_values: int,
    idle_seconds: float = 30.0,
) -> Any:
    """The parsed body, within `limit` bytes, `max_depth` levels and `max_values` values."""
    content_type = request.headers.get("content-type", "application/json")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("send the job as application/json")
    body = await read_limited(request, limit, idle_seconds=idle_seconds)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadJson(f"the body is not valid JSON: {exc}") from exc
    check_json_bounds(value, max_depth=max_depth, max_values=max_values)
    return value


def check_json_bounds(value: Any, *, max_depth: int, max_values: int) -> None:
    """Refuse JSON nested deeper than `max_depth` (400) or holding more than
    `max_values` values (413), before any code walks it recursively.

    Walks level by level; a level made of lists only (the rows of an array) is
    flattened at C speed, so an array of millions of numbers costs little."""
    level, count = [value], 1
    for _ in range(max_depth):
        kinds = set(map(type, level))
        if kinds == {list}:
            level = list(chain.from_iterable(level))
        elif kinds & {list, dict}:
            level = [child for item in level for child in _children(item)]
        else:
            return
        count += len(level)
        if count > max_values:
            raise TooLarge(f"the body holds more than {max_values} JSON values")
    if any(type(item) in (list, dict) for item in level):
        raise JsonTooDeep(f"the body is nested deeper than {max_depth} levels")


def _children(item: Any) -> Iterable[Any]:
    if type(item) is dict:
        return item.values()
    return item if type(item) is list else ()
