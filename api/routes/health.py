from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from arrayq.api.deps import BackendsDep
from arrayq.api.responses import JSONBody
from arrayq.storage.errors import ArrayqError, StorageFull

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: Redis and the store reachable, the store not full")
async def readyz(backends: BackendsDep) -> JSONBody:
    checks = {"redis": "ok", "storage": "ok"}
    try:
        await backends.aredis.ping()
    except Exception as exc:  # any failure of the ping means not ready
        checks["redis"] = f"unavailable: {exc}"
    try:
        await run_in_threadpool(backends.store.check)
    except StorageFull as exc:
        checks["storage"] = f"full: {exc}"
    except ArrayqError as exc:
        checks["storage"] = f"unavailable: {exc}"
    ready = all(value == "ok" for value in checks.values())
    return JSONBody({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
