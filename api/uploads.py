"""Receiving a raw `.npy` upload: the header is checked before anything is
stored, then the body streams to the object store through a small bounded
queue, so memory stays flat whatever the size. A body that ends early or runs
past the size its header declares stores nothing."""

import asyncio
import io
import queue
from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from arrayq.api.backends import Backends
from arrayq.api.errors import ApiError
from arrayq.storage import codecs, keys
from arrayq.storage.digests import ArrayHasher
from arrayq.storage.errors import InvalidArray
from arrayq.storage.uploads import Upload, save_upload

NPY_MEDIA_TYPES = {"application/x-npy", "application/octet-stream"}
BATCH_BYTES = 1 << 20
QUEUE_BATCHES = 8
_PREAMBLE_BYTES = 12  # magic (6) + version (2) + header length (2 or 4)
_END = object()


class _Aborted(Exception):
    """The request side gave up; the store must keep nothing."""


async def receive_upload(backends: Backends, tenant: str, request: Request) -> Upload:
    _check_content_type(request)
    limit = backends.settings.max_input_bytes
    body = _batches(request.stream())
    prefix = await _read_header_bytes(body)
    header = codecs.read_npy_header(io.BytesIO(prefix), max_bytes=limit)
    total = header.offset + header.nbytes
    _check_declared_length(request, total)
    upload_id = keys.new_id()
    key = keys.upload_object(tenant, upload_id)
    hasher = ArrayHasher(header.dtype.str, header.shape, header.fortran_order)
    hashed = _hashed(body, hasher, prefix, header.offset)
    await _stream_to_store(backends, key, prefix, hashed, total)
    upload = Upload(
        id=upload_id,
        tenant=tenant,
        key=key,
        dtype=header.dtype.name,
        shape=header.shape,
        nbytes=header.nbytes,
        digest=hasher.hexdigest(),
    )
    await run_in_threadpool(
        save_upload, backends.redis, upload, ttl_seconds=backends.settings.result_ttl_seconds
    )
    return upload


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NPY_MEDIA_TYPES:
        raise ApiError(
            415, "unsupported_media_type", "send the upload as application/x-npy (a raw .npy file)"
        )


def _check_declared_length(request: Request, total: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != total:
        raise InvalidArray(
            f"Content-Length is {declared} but the .npy header describes {total} bytes"
        )


async def _batches(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body regrouped into pieces of about BATCH_BYTES, so the thread hop per piece is cheap."""
    pending = bytearray()
    async for chunk in stream:
        pending += chunk
        if len(pending) >= BATCH_BYTES:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


async def _hashed(
    body: AsyncIterator[bytes], hasher: ArrayHasher, prefix: bytes, offset: int
) -> AsyncIterator[bytes]:
    """The body passed through, its array bytes (after the header) hashed on the way."""
    hasher.update(prefix[offset:])
    async for chunk in body:
        hasher.update(chunk)
        yield chunk


async def _read_header_bytes(body: AsyncIterator[bytes]) -> bytes:
    """Enough leading bytes to hold the whole `.npy` header (and maybe some data)."""
    prefix = b""
    needed = _PREAMBLE_BYTES
    while len(prefix) < needed:
        chunk = await anext(body, None)
        if chunk is None:
            break
        prefix += chunk
        if len(prefix) >= 10 and prefix.startswith(b"\x93NUMPY"):
            length_size = 2 if prefix[6] == 1 else 4
            needed = 8 + length_size + int.from_bytes(prefix[8 : 8 + length_size], "little")
            needed = min(needed, codecs.NPY_MAX_HEADER_BYTES + 12)
    return prefix


async def _stream_to_store(
    backends: Backends, key: str, prefix: bytes, body: AsyncIterator[bytes], total: int
) -> None:
    pieces: queue.Queue[object] = queue.Queue(maxsize=QUEUE_BATCHES)
    writer = asyncio.ensure_future(
        run_in_threadpool(backends.store.write, key, _exact(pieces, total), total)
    )
    try:
        await _feed(pieces, prefix, body, writer)
        await writer
    except BaseException:
        await _abort(pieces, writer)
        await run_in_threadpool(backends.store.delete, key)
        raise


async def _feed(
    pieces: queue.Queue[object], prefix: bytes, body: AsyncIterator[bytes], writer: asyncio.Future
) -> None:
    await _put(pieces, prefix, writer)
    async for chunk in body:
        await _put(pieces, chunk, writer)
    await _put(pieces, _END, writer)


async def _put(pieces: queue.Queue[object], item: object, writer: asyncio.Future) -> None:
    while True:
        if writer.done():
            writer.result()  # raises the writer's error
            if item is _END:  # the store took exactly the declared bytes
                return
            raise InvalidArray("the body runs past the size its .npy header describes")
        try:
            pieces.put_nowait(item)
            return
        except queue.Full:
            await asyncio.sleep(0.002)


async def _abort(pieces: queue.Queue[object], writer: asyncio.Future) -> None:
    while not writer.done():
        try:
            pieces.put_nowait(_Aborted())
        except queue.Full:
            await asyncio.sleep(0.002)
            continue
        break
    try:
        await writer
    except Exception:  # the write failed as intended: nothing was stored
        return


def _exact(pieces: queue.Queue[object], total: int) -> Iterator[bytes]:
    """The queued pieces, refusing a body shorter or longer than `total`."""
    seen = 0
    while True:
        item = pieces.get()
        if item is _END:
            break
        if isinstance(item, _Aborted):
            raise item
        assert isinstance(item, bytes)
        seen += len(item)
        if seen > total:
            raise InvalidArray(f"the body runs past the {total} bytes its .npy header describes")
        yield item
    if seen < total:
        raise InvalidArray(f"the body ended after {seen} of the {total} bytes its header describes")
