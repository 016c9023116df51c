"""The FastAPI application factory."""

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from arrayq.api.backends import Backends
from arrayq.api.errors import install_error_handlers
from arrayq.api.metrics import install_metrics
from arrayq.api.openapi import arrayq_components
from arrayq.api.ratelimit import limiter_from
from arrayq.api.routes import docs, health, jobs, ops, results, ui, uploads, zarr_views
from arrayq.api.schemas import ArrayInput, JobRequest
from arrayq.storage.errors import ArrayqError
from arrayq.storage.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backends = Backends.from_settings(settings)
        await run_in_threadpool(_prepare_store, backends)
        app.state.backends = backends
        backends.feed.start()
        app.state.tenants_by_key = settings.tenants_by_key()
        app.state.rate_limiter = limiter_from(
            backends.redis, settings.rate_limit_per_minute, settings.rate_limit_burst
        )
        try:
            yield
        finally:
            await backends.close()

    app = FastAPI(
        title="arrayq",
        version="0.1.0",
        summary="NumPy functions as an HTTP job service",
        # /docs and /redoc come from routes/docs.py, with their assets served locally.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (health, ops, jobs, results, zarr_views, uploads, ui, docs):
        app.include_router(module.router)
    install_metrics(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _prepare_store(backends: Backends) -> None:
    """Create the bucket and its expiry rule; a store that is down now is not
    fatal: /readyz reports it and writes wait for it."""
    try:
        backends.store.prepare(timedelta(seconds=backends.settings.result_ttl_seconds))
    except ArrayqError as exc:
        log.warning("object store not prepared at start-up: %s", exc)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema plus the models of bodies that routes parse themselves."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (JobRequest, ArrayInput):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        backends = getattr(app.state, "backends", None)
        if backends is not None:
            components.update(arrayq_components(backends.ops.values()))
        app.openapi_schema = schema
    return app.openapi_schema
