"""What the asynchronous client does differently from the synchronous one, in
the functions that `_sync_io.py` has too, by the same names (see `_unasync.py`)."""

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


async def sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


async def body(chunks: Iterable[Any]) -> AsyncIterator[Any]:
    """A request body: httpx's async client takes async iterables only."""
    for chunk in chunks:
        yield chunk


async def drain(items: AsyncIterator[T], take: Callable[[T], bool], timeout: float | None) -> bool:
    """Hand each item to `take` until it returns True (then True) or the items
    end (then False); `TimeoutError` after `timeout` seconds."""
    with anyio.fail_after(timeout):
        async for item in items:
            if take(item):
                return True
    return False
