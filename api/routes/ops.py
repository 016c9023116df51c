from typing import Any

from fastapi import APIRouter

from api.deps import ServicesDep, TenantDep
from api.errors import ApiError

router = APIRouter(tags=["ops"])


@router.get("/ops", summary="The registered ops")
def list_ops(services: ServicesDep, _: TenantDep) -> list[dict[str, Any]]:
    return [op.describe() for op in sorted(services.ops.values(), key=lambda o: o.name)]


@router.get("/ops/{name}", summary="One op: params schema, inputs, result kind")
def get_op(name: str, services: ServicesDep, _: TenantDep) -> dict[str, Any]:
    op = services.ops.get(name)
    if op is None:
        raise ApiError(404, "unknown_op", f"unknown op {name!r}")
    return op.describe()
