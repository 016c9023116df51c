from typing import Any

from fastapi import APIRouter, Request

from api.deps import ServicesDep, TenantDep
from api.responses import NPY_MEDIA_TYPE
from api.uploads import receive_upload

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
    request: Request, services: ServicesDep, tenant: TenantDep
) -> dict[str, Any]:
    upload = await receive_upload(services, tenant, request)
    return upload.document()
