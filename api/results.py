"""Carrying out a negotiation plan: the response for a finished job's result.

`negotiation.plan()` decides; the functions here only read the store and shape
the response for the plan they are given.
"""

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from arrayq.api import signing
from arrayq.api.backends import Backends
from arrayq.api.errors import InvalidRenderOptions, Missing, ResultNotReady
from arrayq.api.negotiation import (
    Ask,
    File,
    Format,
    Inline,
    NotAcceptable,
    Npz,
    Plan,
    Redirect,
    Render,
    SeeOther,
    Sliced,
    Stream,
    links,
    plan,
)
from arrayq.api.ranges import parse_ranges
from arrayq.api.responses import NPY_MEDIA_TYPE, NPZ_MEDIA_TYPE, NpyFileResponse
from arrayq.storage import codecs, colormaps, npz, slicing
from arrayq.storage.jobs import Job, JobStatus
from arrayq.storage.results import OutputFacts, ResultFacts, result_formats


@dataclass(frozen=True)
class RenderOptions:
    cmap: str = "viridis"
    vmin: float | None = None
    vmax: float | None = None


@dataclass(frozen=True)
class ResultRequest:
    """What a result route was asked, besides the job."""

    fmt: Format | None
    output: str | None = None
    redirect: bool = True
    render: RenderOptions = RenderOptions()
    range_header: str | None = None
    slice_text: str | None = None


def require_succeeded(job: Job) -> ResultFacts:
    """The job's result facts; 409 (with the job) unless it succeeded."""
    facts = job.facts
    if job.status != JobStatus.SUCCEEDED or facts is None:
        if job.status == JobStatus.FAILED:
            message = f"job {job.id} failed; it has no result"
        else:
            message = f"job {job.id} is {job.status.value}; the result is not ready"
        raise ResultNotReady(message, job=job.document())
    return facts


def result_response(backends: Backends, job: Job, asked: ResultRequest) -> Response:
    facts = require_succeeded(job)
    ask = Ask(
        job_id=job.id,
        fmt=asked.fmt,
        output=asked.output,
        slice_text=asked.slice_text,
        redirect=asked.redirect,
        local=_is_local(backends),
        inline_max_bytes=backends.settings.inline_max_bytes,
        max_slice_bytes=backends.settings.max_input_bytes,
    )
    return carry_out(backends, job, plan(facts, ask), asked)


def _is_local(backends: Backends) -> bool:
    return backends.store.local_path("results") is not None


def carry_out(backends: Backends, job: Job, chosen: Plan, asked: ResultRequest) -> Response:
    match chosen:
        case SeeOther(location):
            return RedirectResponse(location, status_code=303)
        case Inline(outputs, several):
            return json_response(backends, outputs, several)
        case File(out):
            return local_npy_response(backends, out, job.id, asked)
        case Redirect(out):
            ttl = timedelta(seconds=backends.settings.url_ttl_seconds)
            return RedirectResponse(backends.store.presigned_url(out.key, ttl), status_code=307)
        case Stream(out):
            return streamed_npy_response(backends, out, asked.range_header)
        case Npz(outputs):
            return npz_response(backends, job, outputs)
        case Render(out, mode):
            return png_response(backends, out, mode, asked.render)
        case Sliced():
            return sliced_response(backends, chosen, asked.render)
    raise AssertionError(f"unknown plan {chosen!r}")


def json_response(backends: Backends, outputs: tuple[OutputFacts, ...], several: bool) -> Response:
    if not several:
        content = codecs.encode_array_json(load_output(backends, outputs[0]))
    else:
        members = [
            b'"' + out.name.encode() + b'":' + codecs.encode_array_json(load_output(backends, out))
            for out in outputs
        ]
        content = b'{"outputs":{' + b",".join(members) + b"}}"
    return Response(
        content, media_type="application/json", headers={"ETag": _etag(outputs, "json")}
    )


def png_response(
    backends: Backends, out: OutputFacts, mode: str, render: RenderOptions
) -> Response:
    if mode == "stored" and out.png_key:
        with backends.store.open(out.png_key) as stream:
            content = stream.read()
        etag = _etag((out,), "png")
    else:
        array = load_output(backends, out)
        content = codecs.encode_png(array if mode == "encode" else _render(array, render))
        etag = _etag((out,), f"png-{render.cmap}-{render.vmin}-{render.vmax}")
    return Response(content, media_type="image/png", headers={"ETag": etag})


def _render(array: np.ndarray, render: RenderOptions) -> np.ndarray:
    try:
        return colormaps.render(array, render.cmap, render.vmin, render.vmax)
    except ValueError as exc:
        raise InvalidRenderOptions(str(exc)) from exc


def local_npy_response(
    backends: Backends, out: OutputFacts, job_id: str, asked: ResultRequest
) -> Response:
    path = backends.store.local_path(out.key)
    if path is None or not path.is_file():
        raise Missing("the result is no longer stored")
    parse_ranges(asked.range_header, path.stat().st_size)  # a bad Range gets a JSON error
    name = f"{job_id}.npy" if asked.output is None else f"{job_id}-{asked.output}.npy"
    prefix = backends.settings.accel_redirect_prefix
    if prefix is not None:
        return accel_redirect_response(prefix + out.key, name)
    return NpyFileResponse(
        path, media_type=NPY_MEDIA_TYPE, filename=name, headers={"ETag": _etag((out,), "npy")}
    )


def accel_redirect_response(uri: str, filename: str) -> Response:
    """No body: nginx in front sends the file from its internal location (Range
    included), with this response's type and disposition. The URI holds ids and
    output names only."""
    return Response(
        status_code=200,
        media_type=NPY_MEDIA_TYPE,
        headers={
            "X-Accel-Redirect": uri,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


def streamed_npy_response(
    backends: Backends, out: OutputFacts, range_header: str | None
) -> Response:
    """The object streamed through the API, memory bounded, with a single byte
    range honoured (several ranges get the whole object, as RFC 9110 allows)."""
    size = backends.store.size(out.key)
    ranges = parse_ranges(range_header, size)
    headers = {"ETag": _etag((out,), "npy"), "Accept-Ranges": "bytes"}
    start, end, status = 0, size, 200
    if len(ranges) == 1:
        (start, end), status = ranges[0], 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(
        backends.store.iter_range(out.key, start, end - start),
        status_code=status,
        media_type=NPY_MEDIA_TYPE,
        headers=headers,
    )


def npz_response(backends: Backends, job: Job, outputs: tuple[OutputFacts, ...]) -> Response:
    """Every output in one uncompressed .npz, its headers computed from the
    recorded sizes and CRCs and its data streamed from the store."""
    entries = [npz.Entry(out.name, *_size_and_crc(backends, out)) for out in outputs]
    parts = npz.layout(entries)
    keys_by_name = {out.name: out.key for out in outputs}
    return StreamingResponse(
        _npz_chunks(backends, parts, keys_by_name),
        media_type=NPZ_MEDIA_TYPE,
        headers={
            "Content-Length": str(npz.size(parts)),
            "ETag": _etag(outputs, "npz"),
            "Content-Disposition": f'attachment; filename="{job.id}.npz"',
        },
    )


def _npz_chunks(
    backends: Backends, parts: list[npz.Part], keys_by_name: dict[str, str]
) -> Iterator[bytes]:
    for part in parts:
        if part.entry is None:
            yield part.data
        else:
            yield from backends.store.iter_range(keys_by_name[part.entry.name], 0, part.length)


def _size_and_crc(backends: Backends, out: OutputFacts) -> tuple[int, int]:
    """Recorded by the worker; computed by one read for results stored before."""
    if out.size and out.crc32 is not None:
        return out.size, out.crc32
    import zlib

    crc, size = 0, 0
    for chunk in backends.store.iter_range(out.key, 0, backends.store.size(out.key)):
        crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    return size, crc


def sliced_response(backends: Backends, chosen: Sliced, render: RenderOptions) -> Response:
    """A sub-array, read without loading the whole output."""
    out = chosen.output
    limit = backends.settings.max_input_bytes
    array = slicing.read_slice(backends.store, out.key, chosen.index, max_bytes=limit)
    headers = {"ETag": _etag((out,), f"slice-{slicing.canonical(chosen.index)}")}
    if chosen.fmt == Format.JSON:
        return Response(
            codecs.encode_array_json(array), media_type="application/json", headers=headers
        )
    if chosen.fmt == Format.PNG:
        image = array if chosen.png_mode == "encode" else _render(array, render)
        return Response(codecs.encode_png(image), media_type="image/png", headers=headers)
    content = b"".join(codecs.npy_chunks(array))  # one copy: join takes the views as they are
    return Response(content, media_type=NPY_MEDIA_TYPE, headers=headers)


def load_output(backends: Backends, out: OutputFacts) -> np.ndarray:
    with backends.store.open(out.key) as stream:
        return codecs.read_npy(stream, max_bytes=backends.settings.max_result_bytes)


def download_link(
    backends: Backends, job: Job, request: Request, output: str | None = None
) -> dict[str, str]:
    facts = require_succeeded(job)
    out = _linked_output(job, facts, output, backends.settings.inline_max_bytes)
    ttl = backends.settings.url_ttl_seconds
    expires = int(time.time()) + ttl
    url = backends.store.presigned_url(out.key, timedelta(seconds=ttl))
    if url is None:
        subject = signing.subject(job.id, output)
        signature = signing.sign(backends.signing_secret(), subject, expires)
        path = f"/files/{job.id}" if output is None else f"/files/{job.id}/{output}"
        url = f"{str(request.base_url).rstrip('/')}{path}?exp={expires}&sig={signature}"
    expires_at = datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")
    return {"url": url, "expires_at": expires_at}


def _linked_output(
    job: Job, facts: ResultFacts, output: str | None, inline_max_bytes: int
) -> OutputFacts:
    if output is not None:
        return facts.output(output)
    if facts.multi:
        ask = Ask(job_id=job.id, fmt=Format.AUTO, inline_max_bytes=inline_max_bytes)
        raise NotAcceptable(
            "a job with several outputs has one download link per output",
            links(ask, result_formats(facts, inline_max_bytes), facts),
        )
    return next(iter(facts.outputs.values()))


_ETAG_SAFE = re.compile(r"[A-Za-z0-9._:,+-]*")


def _etag(outputs: tuple[OutputFacts, ...], variant: str) -> str:
    """A quoted ETag from the stored files (so equal results have equal tags); a
    variant with anything but plain ASCII is hashed, so no request text reaches
    a header as is."""
    if not _ETAG_SAFE.fullmatch(variant):
        variant = hashlib.sha256(variant.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    identity = "".join(
        f"{out.crc32:08x}{out.size:x}" if out.crc32 is not None else out.key for out in outputs
    )
    if len(identity) > 32 or not _ETAG_SAFE.fullmatch(identity):
        identity = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f'"{identity}-{variant}"'
