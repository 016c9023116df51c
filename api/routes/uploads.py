from typing import Any

from fastapi import APIRouter, Request

from arrayq.api.deps import BackendsDep, TenantDep
from arrayq.api.responses import NPY_MEDIA_TYPE
from arrayq.api.uploads import receive_upload

router = APIRouter(tags=["uploads"])

_NPY_BODY = {
    "requestBody": {
        "required": True,
        "content": {NPY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/uploads",
    status_code=201,
    summary='Upload a large input as a raw .npy file; jobs reference it as {"upload": id}',
    openapi_extra=_NPY_BODY,
)
async def create_upload(
    request: Request, backends: BackendsDep, tenant: TenantDep
) -> dict[str, Any]:
    upload = await receive_upload(backends, tenant, request)
    return upload.document()
