from typing import Any

from fastapi import APIRouter

from arrayq.api.deps import BackendsDep, TenantDep
from arrayq.api.errors import NoSuchOp

router = APIRouter(tags=["ops"])


@router.get("/ops", summary="The registered ops")
def list_ops(backends: BackendsDep, _: TenantDep) -> list[dict[str, Any]]:
    return [op.describe() for op in sorted(backends.ops.values(), key=lambda o: o.name)]


@router.get("/ops/{name}", summary="One op: params schema, inputs, result kind")
def get_op(name: str, backends: BackendsDep, _: TenantDep) -> dict[str, Any]:
    op = backends.ops.get(name)
    if op is None:
        raise NoSuchOp(f"unknown op {name!r}")
    return op.describe()
