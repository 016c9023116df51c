"""Prometheus metrics at `GET /metrics`.

Two kinds, kept apart on purpose:

- Job metrics (submitted, finished, run durations, queue lengths) describe the
  whole deployment. They are counted in Redis (`storage.stats`) by whichever
  process sees the event, API or worker, and read on each scrape, so every API
  replica reports the same totals: aggregate them across replicas with `max`,
  not `sum`.
- HTTP request latency and result bytes served are counted in this process,
  like any per-instance metric: `sum` them across replicas.

`/metrics` needs no API key, like the health routes: it holds no job id or
data, only op names, counts, and the tenant names of the fair-share gauges
(names the operator chose in ARRAYQ_API_KEYS, never request text).
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arrayq.api.backends import Backends
from arrayq.api.responses import NPY_MEDIA_TYPE
from arrayq.storage.broker import queue_lengths
from arrayq.storage.errors import ArrayqError
from arrayq.storage.fairshare import FairShare, TenantShare
from arrayq.storage.stats import JobStats, StatsSnapshot
from arrayq.storage.webhooks import WebhookStats, webhook_stats

log = logging.getLogger(__name__)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_RESULT_ROUTES = frozenset({"/jobs/{job_id}/result", "/files/{job_id}"})
_RESULT_FORMATS = {"application/json": "json", NPY_MEDIA_TYPE: "npy", "image/png": "png"}

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def get_metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# job metrics, read from Redis on scrape


class JobCollector(Collector):
    """Job metrics of the whole deployment, read from Redis at each scrape."""

    def __init__(self, backends: Callable[[], Backends | None]) -> None:
        self.backends = backends

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to read before the app has started

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("arrayq_job_stats_up", "1 when the job metrics could be read")
        try:
            families = self._read()
        except (ArrayqError, redis.RedisError) as exc:
            log.warning("job metrics unavailable: %s", exc)
            families = []
        up.add_metric([], 1 if families else 0)
        return [up, *families]

    def _read(self) -> list[Metric]:
        backends = self.backends()
        if backends is None:
            return []  # scraped before the app started
        snapshot = JobStats(backends.redis).snapshot()
        shares = FairShare(backends.redis).tenants()
        return [
            *job_families(snapshot),
            queue_family(queue_lengths(backends.redis)),
            *fair_share_families(shares),
            *webhook_families(webhook_stats(backends.redis)),
        ]


def job_families(snapshot: StatsSnapshot) -> list[Metric]:
    submitted = CounterMetricFamily("arrayq_jobs_submitted", "Jobs accepted, by op", labels=["op"])
    for op, count in sorted(snapshot.submitted.items()):
        submitted.add_metric([op], count)
    finished = CounterMetricFamily(
        "arrayq_jobs_finished",
        "Jobs that reached a final status, by op and status",
        labels=["op", "status"],
    )
    for (op, status), count in sorted(snapshot.finished.items()):
        finished.add_metric([op, status], count)
    durations = HistogramMetricFamily(
        "arrayq_job_duration_seconds",
        "Run time of jobs that succeeded or failed, from start to final status, by op",
        labels=["op"],
    )
    for op, observed in sorted(snapshot.durations.items()):
        durations.add_metric([op], observed.buckets, observed.sum)
    cache_hits = CounterMetricFamily(
        "arrayq_cache_hits", "Jobs served from the result cache, by op", labels=["op"]
    )
    for op, count in sorted(snapshot.cache_hits.items()):
        cache_hits.add_metric([op], count)
    return [submitted, finished, durations, cache_hits]


def queue_family(lengths: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(
        "arrayq_queue_length", "Jobs waiting in a Celery queue", labels=["queue"]
    )
    for queue, length in lengths.items():
        family.add_metric([queue], length)
    return family


def fair_share_families(shares: list[TenantShare]) -> list[Metric]:
    active = GaugeMetricFamily(
        "arrayq_tenant_active_jobs",
        "Jobs of a tenant on the broker queue or running (ARRAYQ_TENANT_MAX_ACTIVE)",
        labels=["tenant"],
    )
    backlog = GaugeMetricFamily(
        "arrayq_tenant_backlog_length",
        "Jobs of a tenant waiting in its backlog for room",
        labels=["tenant"],
    )
    for share in shares:
        active.add_metric([share.tenant], share.active)
        backlog.add_metric([share.tenant], share.backlog)
    return [active, backlog]


def webhook_families(stats: WebhookStats) -> list[Metric]:
    pending = GaugeMetricFamily(
        "arrayq_webhook_deliveries_pending", "Webhook deliveries not yet delivered or failed"
    )
    pending.add_metric([], stats.pending)
    ended = CounterMetricFamily(
        "arrayq_webhook_deliveries",
        "Webhook deliveries that ended, by event and outcome (delivered, failed)",
        labels=["event", "outcome"],
    )
    for (event, outcome), count in sorted(stats.ended.items()):
        ended.add_metric([event, outcome], count)
    return [pending, ended]


# per-process metrics


class Metrics:
    """The metrics registry of one API process."""

    def __init__(self, backends: Callable[[], Backends | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "arrayq_http_request_duration_seconds",
            "Time from request to the end of the response, by route template, method, status",
            ["route", "method", "status"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.result_bytes = Counter(
            "arrayq_result_bytes",
            "Bytes of results sent, by format (json, npy, png)",
            ["format"],
            registry=self.registry,
        )
        self.registry.register(JobCollector(backends))
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)


@dataclass
class _Exchange:
    """What the middleware saw of one request and its response."""

    started: float
    status: int = 500
    content_type: str = ""
    content_length: int = 0
    body_bytes: int = 0
    recorded: bool = False


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


def method_label(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in _METHODS else "other"


def is_last(message: Message) -> bool:
    if message["type"] == "http.response.body":
        return not message.get("more_body", False)
    return message["type"] == "http.response.pathsend"


class MetricsMiddleware:
    """Times each request by route template (bounded labels, unlike raw paths),
    counts result bytes sent, and reports job submissions and cancellations to
    the job counters. Everything is recorded before the response's last message
    goes out, so a client that reads /metrics next sees its own request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(started=time.perf_counter())

        async def observe(message: Message) -> None:
            await self._on_message(scope, exchange, message)
            if is_last(message):
                self._record(scope, exchange)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            if not exchange.recorded:  # the response failed or never finished
                self._record(scope, exchange)

    async def _on_message(self, scope: Scope, exchange: _Exchange, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = _headers(message)
            exchange.status = message["status"]
            exchange.content_type = headers.get("content-type", "").split(";")[0].strip()
            exchange.content_length = int(headers.get("content-length") or 0)
        elif message["type"] == "http.response.body":
            exchange.body_bytes += len(message.get("body", b""))
        elif message["type"] == "http.response.pathsend":
            exchange.body_bytes += exchange.content_length

    def _record(self, scope: Scope, exchange: _Exchange) -> None:
        exchange.recorded = True
        route = route_label(scope)
        seconds = time.perf_counter() - exchange.started
        self.metrics.requests.labels(route, method_label(scope), str(exchange.status)).observe(
            seconds
        )
        result_format = _RESULT_FORMATS.get(exchange.content_type)
        if route in _RESULT_ROUTES and result_format and exchange.status in (200, 206):
            self.metrics.result_bytes.labels(result_format).inc(exchange.body_bytes)


def _headers(message: Message) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in message.get("headers", [])
    }


def install_metrics(app: FastAPI) -> None:
    """Add `GET /metrics` and the request middleware to the app."""
    app.state.metrics = Metrics(lambda: getattr(app.state, "backends", None))
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.include_router(router)
