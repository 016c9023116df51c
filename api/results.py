"""Serving a finished job's result in the negotiated format."""

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from arrayq.api import signing
from arrayq.api.backends import Backends
from arrayq.api.errors import ApiError
from arrayq.api.negotiation import Format
from arrayq.api.ranges import parse_ranges
from arrayq.api.responses import NPY_MEDIA_TYPE, NpyFileResponse
from arrayq.storage import codecs, colormaps, keys, slicing
from arrayq.storage.errors import TooLarge
from arrayq.storage.jobs import Job, JobStatus


@dataclass(frozen=True)
class RenderOptions:
    cmap: str = "viridis"
    vmin: float | None = None
    vmax: float | None = None


def require_succeeded(job: Job) -> dict:
    """The job's result description; 409 (with the job) unless it succeeded."""
    if job.status != JobStatus.SUCCEEDED or job.result is None:
        if job.status == JobStatus.FAILED:
            message = f"job {job.id} failed; it has no result"
        else:
            message = f"job {job.id} is {job.status.value}; the result is not ready"
        raise ApiError(409, "result_not_ready", message, job=job.document())
    return job.result


def format_links(job: Job) -> dict[str, str]:
    base = f"/jobs/{job.id}/result"
    formats = (job.result or {}).get("formats", [])
    links = {fmt: f"{base}?format={fmt}" for fmt in formats}
    links["url"] = f"{base}/url"
    return links


def not_acceptable(job: Job, message: str) -> ApiError:
    return ApiError(406, "not_acceptable", message, links=format_links(job))


def result_response(
    backends: Backends,
    job: Job,
    fmt: Format,
    *,
    redirect: bool = True,
    render: RenderOptions | None = None,
    range_header: str | None = None,
    slice_text: str | None = None,
) -> Response:
    result = require_succeeded(job)
    if slice_text is not None:
        return sliced_response(backends, job, fmt, slice_text, render or RenderOptions())
    if fmt == Format.AUTO:
        if "json" in result["formats"]:
            fmt = Format.JSON
        else:
            return RedirectResponse(f"/jobs/{job.id}/result?format=npy", status_code=303)
    if fmt == Format.JSON:
        return json_response(backends, job)
    if fmt == Format.PNG:
        return png_response(backends, job, render or RenderOptions())
    return npy_response(backends, job, redirect=redirect, range_header=range_header)


def json_response(backends: Backends, job: Job) -> Response:
    if "json" not in job.result["formats"]:
        raise not_acceptable(
            job,
            f"the result takes {job.result['nbytes']} bytes, over the inline JSON limit of "
            f"{backends.settings.inline_max_bytes}; ask for application/x-npy or the URL",
        )
    array = load_result(backends, job)
    return Response(
        codecs.encode_array_json(array),
        media_type="application/json",
        headers={"ETag": _etag(job, "json")},
    )


def png_response(backends: Backends, job: Job, render: RenderOptions) -> Response:
    if "png" not in job.result["formats"]:
        raise not_acceptable(job, f"no PNG for a result of shape {job.result['shape']}")
    if job.result["kind"] == "image":
        with backends.store.open(keys.result_object(job.tenant, job.id, "png")) as stream:
            content = stream.read()
        etag = _etag(job, "png")
    else:
        image = _render(load_result(backends, job), render)
        content = codecs.encode_png(image)
        etag = _etag(job, f"png-{render.cmap}-{render.vmin}-{render.vmax}")
    return Response(content, media_type="image/png", headers={"ETag": etag})


def _render(array: np.ndarray, render: RenderOptions) -> np.ndarray:
    try:
        return colormaps.render(array, render.cmap, render.vmin, render.vmax)
    except ValueError as exc:
        raise ApiError(422, "invalid_render_options", str(exc)) from exc


def npy_response(
    backends: Backends, job: Job, *, redirect: bool, range_header: str | None = None
) -> Response:
    key = keys.result_object(job.tenant, job.id, "npy")
    path = backends.store.local_path(key)
    if path is not None:
        return local_npy_response(backends, job, path, range_header)
    if redirect:
        ttl = timedelta(seconds=backends.settings.url_ttl_seconds)
        return RedirectResponse(backends.store.presigned_url(key, ttl), status_code=307)
    return streamed_npy_response(backends, job, key, range_header)


def local_npy_response(
    backends: Backends, job: Job, path: Path, range_header: str | None
) -> Response:
    if not path.is_file():
        raise ApiError(404, "not_found", "the result is no longer stored")
    parse_ranges(range_header, path.stat().st_size)  # a bad Range gets a JSON error
    prefix = backends.settings.accel_redirect_prefix
    if prefix is not None:
        return accel_redirect_response(prefix + keys.result_object(job.tenant, job.id), job.id)
    return NpyFileResponse(
        path,
        media_type=NPY_MEDIA_TYPE,
        filename=f"{job.id}.npy",
        headers={"ETag": _etag(job, "npy")},
    )


def accel_redirect_response(uri: str, job_id: str) -> Response:
    """No body: nginx in front sends the file from its internal location (Range
    included), with this response's type and disposition. The URI holds ids only."""
    return Response(
        status_code=200,
        media_type=NPY_MEDIA_TYPE,
        headers={
            "X-Accel-Redirect": uri,
            "Content-Disposition": f'attachment; filename="{job_id}.npy"',
        },
    )


def streamed_npy_response(
    backends: Backends, job: Job, key: str, range_header: str | None
) -> Response:
    """The object streamed through the API, memory bounded, with a single byte
    range honoured (several ranges get the whole object, as RFC 9110 allows)."""
    size = backends.store.size(key)
    ranges = parse_ranges(range_header, size)
    headers = {"ETag": _etag(job, "npy"), "Accept-Ranges": "bytes"}
    start, end, status = 0, size, 200
    if len(ranges) == 1:
        (start, end), status = ranges[0], 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(
        backends.store.iter_range(key, start, end - start),
        status_code=status,
        media_type=NPY_MEDIA_TYPE,
        headers=headers,
    )


def sliced_response(
    backends: Backends, job: Job, fmt: Format, slice_text: str, render: RenderOptions
) -> Response:
    """A sub-array in any format, read without loading the whole result."""
    result = job.result
    index = slicing.parse_slice(slice_text, result["shape"])
    itemsize = np.dtype(result["dtype"]).itemsize
    nbytes = slicing.sliced_nbytes(result["shape"], itemsize, index)
    limit = backends.settings.max_input_bytes
    if nbytes > limit:
        raise TooLarge(f"the slice takes {nbytes} bytes, over the limit of {limit}; slice less")
    if fmt == Format.AUTO:
        fmt = Format.JSON if nbytes <= backends.settings.inline_max_bytes else Format.NPY
    if fmt == Format.JSON and nbytes > backends.settings.inline_max_bytes:
        raise not_acceptable(job, f"the slice takes {nbytes} bytes, over the inline JSON limit")
    key = keys.result_object(job.tenant, job.id, "npy")
    array = slicing.read_slice(backends.store, key, index, max_bytes=limit)
    headers = {"ETag": _etag(job, f"slice-{slicing.canonical(index)}")}
    if fmt == Format.JSON:
        return Response(
            codecs.encode_array_json(array), media_type="application/json", headers=headers
        )
    if fmt == Format.PNG:
        return Response(
            codecs.encode_png(_sliced_image(job, array, render)),
            media_type="image/png",
            headers=headers,
        )
    content = b"".join(codecs.npy_chunks(array))  # one copy: join takes the views as they are
    return Response(content, media_type=NPY_MEDIA_TYPE, headers=headers)


def _sliced_image(job: Job, array: np.ndarray, render: RenderOptions) -> np.ndarray:
    if job.result["kind"] == "image" and codecs.is_image(array):
        return array
    if array.ndim == 2 and array.dtype.kind in "biuf":
        return _render(array, render)
    raise not_acceptable(job, f"no PNG for a slice of shape {list(array.shape)}")


def load_result(backends: Backends, job: Job) -> np.ndarray:
    with backends.store.open(keys.result_object(job.tenant, job.id, "npy")) as stream:
        return codecs.read_npy(stream, max_bytes=backends.settings.max_result_bytes)


def download_link(backends: Backends, job: Job, request: Request) -> dict[str, str]:
    require_succeeded(job)
    ttl = backends.settings.url_ttl_seconds
    expires = int(time.time()) + ttl
    key = keys.result_object(job.tenant, job.id, "npy")
    url = backends.store.presigned_url(key, timedelta(seconds=ttl))
    if url is None:
        signature = signing.sign(backends.signing_secret(), job.id, expires)
        url = f"{str(request.base_url).rstrip('/')}/files/{job.id}?exp={expires}&sig={signature}"
    expires_at = datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")
    return {"url": url, "expires_at": expires_at}


_ETAG_SAFE = re.compile(r"[A-Za-z0-9._:,+-]*")


def _etag(job: Job, variant: str) -> str:
    """A quoted ETag naming the result's content (so a cache hit has its source's
    ETag), or the job for results recorded before content digests; a variant with
    anything but plain ASCII is hashed, so no request text reaches a header as is."""
    if not _ETAG_SAFE.fullmatch(variant):
        variant = hashlib.sha256(variant.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    content = job.digests.get("result", "")[:32] or job.id
    return f'"{content}-{variant}"'
