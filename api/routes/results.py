from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from arrayq.api import signing
from arrayq.api.deps import BackendsDep, TenantDep
from arrayq.api.errors import ApiError
from arrayq.api.negotiation import choose_format
from arrayq.api.responses import NPY_MEDIA_TYPE
from arrayq.api.results import (
    RenderOptions,
    download_link,
    local_npy_response,
    not_acceptable,
    result_response,
)
from arrayq.storage import keys
from arrayq.storage.errors import NotFound

router = APIRouter(tags=["results"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_RESULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The result in the negotiated format",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ArrayInput"}},
            NPY_MEDIA_TYPE: _BINARY,
            "image/png": _BINARY,
        },
    },
    206: {"description": "A byte range of the .npy file", "content": {NPY_MEDIA_TYPE: _BINARY}},
    303: {"description": "Too large for JSON: see the .npy format"},
    307: {"description": "Redirect to a presigned object-store URL"},
    406: {"description": "Format not available for this result; `links` lists those that are"},
    409: {"description": "The job has not succeeded; `job` is its document"},
}


@router.api_route(
    "/jobs/{job_id}/result",
    methods=["GET", "HEAD"],
    summary="The result: JSON, .npy or PNG by Accept or ?format=",
    response_class=Response,
    responses=_RESULT_RESPONSES,
)
def get_result(
    job_id: str,
    backends: BackendsDep,
    tenant: TenantDep,
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
) -> Response:
    job = backends.jobs.get(job_id, tenant=tenant)
    fmt = choose_format(format, accept)
    if fmt is None:
        raise not_acceptable(job, f"cannot serve {accept!r}; ask for JSON, .npy or PNG")
    render = RenderOptions(cmap=cmap, vmin=vmin, vmax=vmax)
    return result_response(
        backends, job, fmt, redirect=redirect, render=render, range_header=range, slice_text=slice
    )


@router.get("/jobs/{job_id}/result/url", summary="A signed, expiring download link")
def get_result_url(
    job_id: str, request: Request, backends: BackendsDep, tenant: TenantDep
) -> dict[str, str]:
    job = backends.jobs.get(job_id, tenant=tenant)
    return download_link(backends, job, request)


@router.api_route(
    "/files/{job_id}",
    methods=["GET", "HEAD"],
    summary="Download through a signed link (the signature is the credential)",
    response_class=Response,
    responses={200: {"content": {NPY_MEDIA_TYPE: _BINARY}}, 403: {"description": "Bad or expired"}},
)
async def get_signed_file(
    job_id: str,
    backends: BackendsDep,
    exp: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=128)],
    range: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    secret = await run_in_threadpool(backends.signing_secret)
    if not keys.is_valid_id(job_id) or not signing.verify(secret, job_id, exp, sig):
        raise ApiError(403, "forbidden", "the link is invalid or has expired")
    try:
        job = await run_in_threadpool(backends.jobs.get, job_id)
    except NotFound:
        raise ApiError(403, "forbidden", "the link is invalid or has expired") from None
    path = backends.store.local_path(keys.result_object(job.tenant, job.id, "npy"))
    if path is None:
        raise ApiError(404, "not_found", "signed links serve local storage only")
    return local_npy_response(backends, job, path, range)
