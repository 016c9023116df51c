"""FastAPI dependencies, named as types.

They are `async def` although they do not await: FastAPI runs a plain `def`
dependency in the thread pool, and the hops cost more than the work.
"""

import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from arrayq.api.backends import Backends
from arrayq.api.errors import Unauthorized
from arrayq.api.ratelimit import RateLimiter
from arrayq.storage.jobs import JobStore
from arrayq.storage.settings import Settings
from arrayq.storage.stores import ObjectStore

DEFAULT_TENANT = "default"


async def get_backends(request: Request) -> Backends:
    return request.app.state.backends


BackendsDep = Annotated[Backends, Depends(get_backends)]


async def get_settings(backends: BackendsDep) -> Settings:
    return backends.settings


async def get_jobs(backends: BackendsDep) -> JobStore:
    return backends.jobs


async def get_store(backends: BackendsDep) -> ObjectStore:
    return backends.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]


def tenant_for_key(presented: str, tenants_by_key: dict[str, str]) -> str | None:
    """The tenant of an API key, comparing against every key in constant time."""
    found = None
    for key, tenant in tenants_by_key.items():
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = tenant
    return found


async def get_tenant(request: Request, backends: BackendsDep) -> str:
    tenants_by_key = request.app.state.tenants_by_key
    if not tenants_by_key:
        return DEFAULT_TENANT
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    tenant = (
        tenant_for_key(presented.strip(), tenants_by_key) if scheme.lower() == "bearer" else None
    )
    if tenant is None:
        raise Unauthorized(
            "a valid 'Authorization: Bearer KEY' header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant


async def get_limited_tenant(request: Request, tenant: Annotated[str, Depends(get_tenant)]) -> str:
    """The caller's tenant, once it is within its rate limit (429 otherwise)."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        await run_in_threadpool(limiter.check, tenant)
    return tenant


TenantDep = Annotated[str, Depends(get_limited_tenant)]
