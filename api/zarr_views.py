"""Serving a finished job's array result as a read-only Zarr v3 array.

`zarr.json` is built from the stored file's `.npy` header; a chunk is one
byte range of the file (one ranged GET on S3), padded with zeros to the full
chunk size when it runs past the end of the array.
"""

import io
from collections.abc import Iterator
from functools import lru_cache

from starlette.responses import Response, StreamingResponse

from arrayq.api.backends import Backends
from arrayq.api.responses import JSONBody
from arrayq.api.results import require_succeeded
from arrayq.storage import codecs
from arrayq.storage.errors import NotFound
from arrayq.storage.jobs import Job
from arrayq.storage.results import SINGLE, OutputFacts
from arrayq.storage.stores import ObjectStore
from arrayq.storage.zarr_view import ChunkSpan, ZarrLayout, parse_key

CHUNK_MEDIA_TYPE = "application/octet-stream"
_HEADER_READ = codecs.NPY_MAX_HEADER_BYTES + 16
_ZEROS = bytes(1 << 20)


class NoZarrView(NotFound):
    """The result is not one array (a multi-output job): each output has its own view."""

    type = "no_zarr_view"


def zarr_response(
    backends: Backends, job: Job, key: str, *, output: str | None = None, head: bool = False
) -> Response:
    """The answer to `GET`/`HEAD /jobs/{id}/result.zarr/{key}` (`output` None) or
    `/jobs/{id}/outputs/{output}.zarr/{key}`."""
    indices = parse_key(key)  # an unknown key is 404 before any store access
    out = _viewed_output(job, output)
    layout = stored_layout(backends.store, out.key)
    etag = f"{job.id}-zarr-{out.name}"
    if indices is None:
        return JSONBody(layout.metadata(), headers={"ETag": f'"{etag}"'})
    span = layout.span(indices)
    etag += "-c" + "".join(f".{index}" for index in indices)
    return chunk_response(backends.store, out.key, span, etag=f'"{etag}"', head=head)


def _viewed_output(job: Job, output: str | None) -> OutputFacts:
    """The output a view shows: one named output, or the only one of `/result.zarr`
    (404 `no_zarr_view` for a multi-output job; `unknown_output` for a bad name)."""
    facts = require_succeeded(job)
    if output is not None:
        return facts.output(output)
    if facts.multi:
        names = ", ".join(sorted(facts.outputs))
        raise NoZarrView(
            f"job {job.id} has several outputs ({names}); "
            f"read one at /jobs/{job.id}/outputs/{{name}}.zarr"
        )
    return facts.outputs[SINGLE]


def chunk_response(
    store: ObjectStore, object_key: str, span: ChunkSpan, *, etag: str, head: bool
) -> Response:
    headers = {"Content-Length": str(span.size), "ETag": etag}
    if head:
        return Response(media_type=CHUNK_MEDIA_TYPE, headers=headers)
    return StreamingResponse(
        chunk_bytes(store, object_key, span), media_type=CHUNK_MEDIA_TYPE, headers=headers
    )


def chunk_bytes(store: ObjectStore, object_key: str, span: ChunkSpan) -> Iterator[bytes]:
    """The chunk's byte range as the store streams it, then the zero padding."""
    yield from store.iter_range(object_key, span.start, span.length)
    remaining = span.padding
    while remaining > 0:
        piece = _ZEROS[: min(remaining, len(_ZEROS))]
        remaining -= len(piece)
        yield piece


@lru_cache(maxsize=4096)
def stored_layout(store: ObjectStore, object_key: str) -> ZarrLayout:
    """The layout of a stored result, from its `.npy` header (one small ranged
    read). Cached: a succeeded job's bytes never change and its key names the
    job, so the chunk requests that follow `zarr.json` read only their range."""
    head = store.read_range(object_key, 0, _HEADER_READ)
    header = codecs.read_npy_header(io.BytesIO(head), max_bytes=1 << 62)
    return ZarrLayout.of(header)
