from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from arrayq.api.deps import BackendsDep, TenantDep
from arrayq.api.zarr_views import CHUNK_MEDIA_TYPE, zarr_response

router = APIRouter(tags=["zarr"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`zarr.json` (Zarr v3 array metadata) or one chunk's raw bytes",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            CHUNK_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    404: {"description": "Not a key of the view: outside the chunk grid, or a Zarr v2 probe"},
    409: {"description": "The job has not succeeded; `job` is its document"},
}


@router.api_route(
    "/jobs/{job_id}/result.zarr/{key:path}",
    methods=["GET", "HEAD"],
    summary="The result as a read-only Zarr v3 array: zarr.json and chunks c/i/j/...",
    response_class=Response,
    responses=_RESPONSES,
)
def get_result_zarr(
    job_id: str, key: str, request: Request, backends: BackendsDep, tenant: TenantDep
) -> Response:
    job = backends.jobs.get(job_id, tenant=tenant)
    return zarr_response(backends, job, key, head=request.method == "HEAD")


@router.api_route(
    "/jobs/{job_id}/outputs/{name}.zarr/{key:path}",
    methods=["GET", "HEAD"],
    summary="One output as a read-only Zarr v3 array: zarr.json and chunks c/i/j/...",
    response_class=Response,
    responses=_RESPONSES,
)
def get_output_zarr(
    job_id: str,
    name: Annotated[str, Path(max_length=200)],
    key: str,
    request: Request,
    backends: BackendsDep,
    tenant: TenantDep,
) -> Response:
    job = backends.jobs.get(job_id, tenant=tenant)
    return zarr_response(backends, job, key, output=name, head=request.method == "HEAD")
