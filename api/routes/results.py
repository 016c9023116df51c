from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from arrayq.api import signing
from arrayq.api.backends import Backends
from arrayq.api.deps import BackendsDep, TenantDep
from arrayq.api.errors import Forbidden, Missing, ResultNotReady
from arrayq.api.negotiation import choose_format
from arrayq.api.responses import NPY_MEDIA_TYPE, NPZ_MEDIA_TYPE
from arrayq.api.results import (
    RenderOptions,
    ResultRequest,
    download_link,
    local_npy_response,
    require_succeeded,
    result_response,
)
from arrayq.storage import keys
from arrayq.storage.errors import NotFound
from arrayq.storage.results import SINGLE

router = APIRouter(tags=["results"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_RESULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The result in the negotiated format",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ArrayInput"}},
            NPY_MEDIA_TYPE: _BINARY,
            NPZ_MEDIA_TYPE: _BINARY,
            "image/png": _BINARY,
        },
    },
    206: {"description": "A byte range of the .npy file", "content": {NPY_MEDIA_TYPE: _BINARY}},
    303: {"description": "Too large for JSON: see the .npy (or, several outputs, .npz) format"},
    307: {"description": "Redirect to a presigned object-store URL"},
    404: {"description": "Unknown job, or unknown output name (`unknown_output`)"},
    406: {"description": "Format not available for this result; `links` lists those that are"},
    409: {"description": "The job has not succeeded; `job` is its document"},
}


_OUTPUT_NAME = Path(max_length=200)


def _asked(
    format: Annotated[str | None, Query(max_length=10)] = None,
    accept: Annotated[str | None, Header()] = None,
    range: Annotated[str | None, Header(max_length=1000)] = None,
    redirect: bool = True,
    slice: Annotated[
        str | None, Query(max_length=500, description="NumPy basic slicing, e.g. 0:100,::2")
    ] = None,
    cmap: Annotated[str, Query(max_length=50)] = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
) -> ResultRequest:
    return ResultRequest(
        fmt=choose_format(format, accept),
        redirect=redirect,
        render=RenderOptions(cmap=cmap, vmin=vmin, vmax=vmax),
        range_header=range,
        slice_text=slice,
    )


AskedDep = Annotated[ResultRequest, Depends(_asked)]


@router.api_route(
    "/jobs/{job_id}/result",
    methods=["GET", "HEAD"],
    summary="The result: JSON, .npy, .npz or PNG by Accept or ?format=",
    response_class=Response,
    responses=_RESULT_RESPONSES,
)
def get_result(job_id: str, backends: BackendsDep, tenant: TenantDep, asked: AskedDep) -> Response:
    job = backends.jobs.get(job_id, tenant=tenant)
    return result_response(backends, job, asked)


@router.api_route(
    "/jobs/{job_id}/outputs/{name}",
    methods=["GET", "HEAD"],
    summary="One named output, negotiated like a single result",
    response_class=Response,
    responses=_RESULT_RESPONSES,
)
def get_output(
    job_id: str,
    name: Annotated[str, _OUTPUT_NAME],
    backends: BackendsDep,
    tenant: TenantDep,
    asked: AskedDep,
) -> Response:
    job = backends.jobs.get(job_id, tenant=tenant)
    return result_response(backends, job, replace(asked, output=name))


@router.get("/jobs/{job_id}/result/url", summary="A signed, expiring download link")
def get_result_url(
    job_id: str, request: Request, backends: BackendsDep, tenant: TenantDep
) -> dict[str, str]:
    job = backends.jobs.get(job_id, tenant=tenant)
    return download_link(backends, job, request)


@router.get("/jobs/{job_id}/outputs/{name}/url", summary="A signed, expiring link to one output")
def get_output_url(
    job_id: str,
    name: Annotated[str, _OUTPUT_NAME],
    request: Request,
    backends: BackendsDep,
    tenant: TenantDep,
) -> dict[str, str]:
    job = backends.jobs.get(job_id, tenant=tenant)
    return download_link(backends, job, request, output=name)


_SIGNED = {
    "methods": ["GET", "HEAD"],
    "response_class": Response,
    "responses": {
        200: {"content": {NPY_MEDIA_TYPE: _BINARY}},
        403: {"description": "Bad or expired"},
    },
}


@router.api_route(
    "/files/{job_id}",
    summary="Download through a signed link (the signature is the credential)",
    **_SIGNED,
)
async def get_signed_file(
    job_id: str,
    backends: BackendsDep,
    exp: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=128)],
    range: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    return await _signed_file(backends, job_id, None, exp, sig, range)


@router.api_route(
    "/files/{job_id}/{name}",
    summary="Download one output through a signed link",
    **_SIGNED,
)
async def get_signed_output_file(
    job_id: str,
    name: Annotated[str, _OUTPUT_NAME],
    backends: BackendsDep,
    exp: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=128)],
    range: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    return await _signed_file(backends, job_id, name, exp, sig, range)


async def _signed_file(
    backends: Backends, job_id: str, name: str | None, exp: int, sig: str, range: str | None
) -> Response:
    secret = await run_in_threadpool(backends.signing_secret)
    subject = signing.subject(job_id, name)
    if not keys.is_valid_id(job_id) or not signing.verify(secret, subject, exp, sig):
        raise Forbidden("the link is invalid or has expired")
    try:
        job = await run_in_threadpool(backends.jobs.get, job_id)
        facts = require_succeeded(job)
        out = facts.output(name) if name is not None else facts.outputs[SINGLE]
    except (NotFound, ResultNotReady, KeyError):
        raise Forbidden("the link is invalid or has expired") from None
    if backends.store.local_path(out.key) is None:
        raise Missing("signed links serve local storage only")
    asked = ResultRequest(fmt=None, output=name, range_header=range)
    return local_npy_response(backends, out, job.id, asked)
