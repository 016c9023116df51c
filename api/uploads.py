"""Receiving a raw `.npy` upload: the header is checked before anything is
stored, then the body goes to the object store piece by piece as it arrives,
so memory stays flat whatever the size. A body that ends early, runs past the
size its header declares, or stalls stores nothing.

The event loop waits on the network; only the short store calls (append a
piece, commit) run in threads, bounded by a limiter of the uploads' own, so a
thousand slow clients hold no thread of Starlette's pool between pieces.
"""

import io
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from arrayq.api.backends import Backends
from arrayq.api.body import body_chunks, check_declared_length
from arrayq.api.errors import UnsupportedMediaType
from arrayq.storage import codecs, keys
from arrayq.storage.digests import ArrayHasher
from arrayq.storage.errors import InvalidArray
from arrayq.storage.stores import ObjectWriter
from arrayq.storage.uploads import Upload, save_upload

NPY_MEDIA_TYPES = {"application/x-npy", "application/octet-stream"}
BATCH_BYTES = 1 << 20
_PREAMBLE_BYTES = 12  # magic (6) + version (2) + header length (2 or 4)
_HEADER_ROOM = codecs.NPY_MAX_HEADER_BYTES + _PREAMBLE_BYTES
T = TypeVar("T")


async def receive_upload(backends: Backends, tenant: str, request: Request) -> Upload:
    _check_content_type(request)
    limit = backends.settings.max_input_bytes
    check_declared_length(request, limit + _HEADER_ROOM)
    async with backends.upload_slots.hold(tenant):
        body = _batches(body_chunks(request, backends.settings.body_idle_timeout_seconds))
        prefix = await _read_header_bytes(body)
        header = codecs.read_npy_header(io.BytesIO(prefix), max_bytes=limit)
        total = header.offset + header.nbytes
        _check_length_matches(request, total)
        upload_id = keys.new_id()
        key = keys.upload_object(tenant, upload_id)
        hasher = ArrayHasher(header.dtype.str, header.shape, header.fortran_order)
        sink = _Sink(backends, total, header.offset, hasher)
        await sink.stream(key, prefix, body)
    upload = Upload(
        id=upload_id,
        tenant=tenant,
        key=key,
        dtype=header.dtype.name,
        shape=header.shape,
        nbytes=header.nbytes,
        digest=sink.hasher.hexdigest(),
    )
    await run_in_threadpool(
        save_upload, backends.redis, upload, ttl_seconds=backends.settings.result_ttl_seconds
    )
    return upload


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NPY_MEDIA_TYPES:
        raise UnsupportedMediaType("send the upload as application/x-npy (a raw .npy file)")


def _check_length_matches(request: Request, total: int) -> None:
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
            needed = min(needed, _HEADER_ROOM)
    return prefix


class _Sink:
    """The one place every byte of an upload passes: counted against the size
    the header declares, hashed (the array data, for the result cache), stored."""

    def __init__(
        self, backends: Backends, total: int, data_offset: int, hasher: ArrayHasher
    ) -> None:
        self._backends = backends
        self._total = total
        self._seen = 0
        self._data_offset = data_offset
        self.hasher = hasher

    async def stream(self, key: str, prefix: bytes, body: AsyncIterator[bytes]) -> None:
        writer = await self._in_thread(self._backends.store.begin_write, key, self._total)
        try:
            await self._take(writer, prefix)
            async for batch in body:
                await self._take(writer, batch)
            if self._seen < self._total:
                raise InvalidArray(
                    f"the body ended after {self._seen} of the {self._total} bytes "
                    "its header describes"
                )
            await self._in_thread(writer.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._in_thread(writer.abort)
            raise

    async def _take(self, writer: ObjectWriter, piece: bytes) -> None:
        if self._seen + len(piece) > self._total:
            raise InvalidArray(f"the body runs past the {self._total} bytes its header describes")
        data = memoryview(piece)[max(self._data_offset - self._seen, 0) :]
        self._seen += len(piece)
        await self._in_thread(self._append, writer, piece, data)

    def _append(self, writer: ObjectWriter, piece: bytes, data: memoryview) -> None:
        self.hasher.update(data)  # hashlib lets go of the GIL on large pieces
        writer.write(piece)

    async def _in_thread(self, func: Callable[..., T], *args: object) -> T:
        limiter = self._backends.upload_slots.limiter
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
