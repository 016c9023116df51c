"""3. Job overhead: a no-op job against a bare Celery task and a bare Redis PING."""

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import redis
from celery import Celery

from arrayq.client.processes import Managed, wait_until
from bench.bare_celery import QUEUE, TASK_NAME, create_bare_celery
from bench.config import Plan
from bench.report import Section, Table, Target, ratio
from bench.services import FINAL, submit
from bench.timing import Samples, samples
from tests.support.service import REPO_ROOT, Service

LATENCY_LIMIT = 1.5
THROUGHPUT_SHARE = 0.80
POLL_SECONDS = 0.002  # the polling client's pause between two GET /jobs/{id}
WARMUP_ROUNDS = 5
WORKERS = 2


def run(plan: Plan, workdir: Path, local: Service) -> Section:
    section = Section(
        "3. Job overhead",
        "A `noop` op (registered from `bench.ops`) returning a 0-d array, on the arrayq "
        f"service with {WORKERS} worker processes (prefork, concurrency 1 each). Bare Celery "
        "is a separate app on the same Redis server (database 1) with a Redis result "
        "backend, the same JSON / late-ack / prefetch-1 settings and its own "
        f"{WORKERS} worker processes; its round trip is `apply_async().get()` of an empty "
        f"task. The polling client pauses {POLL_SECONDS * 1e3:g} ms between polls; the "
        "/events client opens the stream right after `POST /jobs` returns. The four "
        "latency ways take turns, one job each per round.",
    )
    bare_url = _database(local.redis_url, 1)
    bare = create_bare_celery(bare_url)
    try:
        with _bare_workers(bare, bare_url, workdir) as bare_running:
            latency, breakdown = _latency(local, bare, plan.sequential_jobs)
            bare_running.stop()
            bare_rate, bare_enqueue = _bare_throughput(bare, bare_running, plan.queued_jobs)
        arrayq_rate, submit_rate = _arrayq_throughput(local, plan.queued_jobs)
    finally:
        bare.close()
    section.tables += [
        _latency_table(latency, plan.sequential_jobs),
        _breakdown_table(breakdown),
        _throughput_table(
            plan.queued_jobs,
            {"arrayq": (arrayq_rate, submit_rate), "bare": (bare_rate, bare_enqueue)},
        ),
    ]
    section.targets = _targets(latency, arrayq_rate, bare_rate)
    section.notes.append(
        "Throughput: the jobs are queued with no worker running, then the workers start; "
        "the rate is (n - 1) / (last finish - first finish), so worker start-up is not "
        "counted. 'submit rate' is one client's sequential `POST /jobs` (for bare Celery: "
        "`apply_async`) while nothing consumes."
    )
    return section


# latency


def _latency(
    service: Service, bare: Celery, count: int
) -> tuple[dict[str, Samples], dict[str, Samples]]:
    ping = redis.Redis.from_url(service.redis_url)
    breakdown: dict[str, list[float]] = {}
    with service.client() as http:
        ways: dict[str, Callable[[], float]] = {
            "bare Redis PING": lambda: _timed(ping.ping),
            "bare Celery apply_async().get()": lambda: _timed(
                lambda: bare.signature(TASK_NAME).apply_async().get(timeout=30)
            ),
            "arrayq: polling GET /jobs/{id}": lambda: _polled_job(http, breakdown),
            "arrayq: GET /jobs/{id}/events": lambda: _evented_job(http),
        }
        for _ in range(WARMUP_ROUNDS):
            for way in ways.values():
                way()
        breakdown.clear()
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(count):
            for name, way in ways.items():
                seconds[name].append(way())
    ping.close()
    return (
        {name: samples(values) for name, values in seconds.items()},
        {name: samples(values) for name, values in breakdown.items()},
    )


def _timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _polled_job(http: httpx.Client, breakdown: dict[str, list[float]]) -> float:
    start = time.perf_counter()
    job_id = submit(http, "noop")
    submitted = time.perf_counter()
    while True:
        document = http.get(f"/jobs/{job_id}").json()
        if document["status"] in FINAL:
            break
        time.sleep(POLL_SECONDS)
    seen = time.perf_counter()
    _check_succeeded(document)
    _record_breakdown(breakdown, document, submitted - start, time.time())
    return seen - start


def _evented_job(http: httpx.Client) -> float:
    start = time.perf_counter()
    job_id = submit(http, "noop")
    with http.stream("GET", f"/jobs/{job_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                document = orjson.loads(line[5:])
                if document["status"] in FINAL:
                    break
    seen = time.perf_counter()
    _check_succeeded(document)
    return seen - start


def _check_succeeded(document: dict) -> None:
    if document["status"] != "succeeded":
        raise RuntimeError(f"noop job {document['id']} {document['status']}: {document['error']}")


def _record_breakdown(
    breakdown: dict[str, list[float]], document: dict, submit_seconds: float, seen: float
) -> None:
    created, started, finished = (
        _epoch(document[field]) for field in ("created_at", "started_at", "finished_at")
    )
    parts = {
        "POST /jobs (client side)": submit_seconds,
        "created_at -> started_at (queue and claim)": started - created,
        "started_at -> finished_at (run, store, record)": finished - started,
        "finished_at -> seen by the polling client": seen - finished,
    }
    for name, value in parts.items():
        breakdown.setdefault(name, []).append(value)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# throughput


def _arrayq_throughput(service: Service, count: int) -> tuple[float, float]:
    """Drain rate of `count` queued no-op jobs with fresh workers, and the submit rate."""
    for worker in service.workers:
        worker.stop()
    with service.client() as http:
        start = time.perf_counter()
        ids = [submit(http, "noop") for _ in range(count)]
        submit_rate = count / (time.perf_counter() - start)
        for _ in range(WORKERS):
            service.start_worker()
        documents = _wait_all(http, ids)
    finished = sorted(_epoch(document["finished_at"]) for document in documents)
    return (count - 1) / (finished[-1] - finished[0]), submit_rate


def _wait_all(http: httpx.Client, ids: list[str], timeout: float = 600.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while time.monotonic() < deadline:
        if http.get(f"/jobs/{ids[-1]}").json()["status"] in FINAL:
            documents = [doc for doc in _all_jobs(http) if doc["id"] in wanted]
            if all(doc["status"] in FINAL for doc in documents) and len(documents) == len(ids):
                for document in documents:
                    _check_succeeded(document)
                return documents
        time.sleep(0.25)
    raise TimeoutError(f"{len(ids)} noop jobs did not finish within {timeout:.0f}s")


def _all_jobs(http: httpx.Client) -> Iterator[dict]:
    cursor = None
    while True:
        params = {"op": "noop", "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = http.get("/jobs", params=params).json()
        yield from page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return


def _bare_throughput(bare: Celery, workers: "BareWorkers", count: int) -> tuple[float, float]:
    signature = bare.signature(TASK_NAME)
    start = time.perf_counter()
    results = [signature.apply_async() for _ in range(count)]
    enqueue_rate = count / (time.perf_counter() - start)
    workers.start()
    finished = sorted(result.get(timeout=600) for result in results)
    return (count - 1) / (finished[-1] - finished[0]), enqueue_rate


# bare Celery workers


class BareWorkers:
    def __init__(self, bare: Celery, redis_url: str, logs: Path) -> None:
        self._bare = bare
        self._env = {**os.environ, "BENCH_CELERY_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
        self._logs = logs
        self._processes: list[Managed] = []

    def start(self) -> None:
        for index in range(WORKERS):
            argv = [sys.executable, "-m", "celery", "-A", "bench.bare_celery", "worker"]
            argv += ["--concurrency=1", "--pool=prefork", "--without-gossip", "--without-mingle"]
            argv += [f"--hostname=bare{index}-{os.getpid()}@%h", f"--queues={QUEUE}"]
            argv += ["--loglevel=WARNING"]
            log_path = self._logs / f"bare-worker-{index}.log"
            self._processes.append(Managed("bare", argv, env=self._env, log_path=log_path).start())
        wait_until(self._ready, 60, "the bare Celery workers")

    def stop(self) -> None:
        for process in self._processes:
            process.stop(timeout=15)
        self._processes.clear()

    def _ready(self) -> bool:
        replies = self._bare.control.ping(timeout=1.0) or []
        return sum(1 for reply in replies for name in reply if name.startswith("bare")) >= WORKERS


@contextmanager
def _bare_workers(bare: Celery, redis_url: str, logs: Path) -> Iterator[BareWorkers]:
    workers = BareWorkers(bare, redis_url, logs)
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


def _database(url: str, number: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{number}"


# report


def _latency_table(latency: dict[str, Samples], count: int) -> Table:
    table = Table(["way", "p50 ms", "p99 ms", "min-max ms", "p50 vs bare Celery"])
    celery = latency["bare Celery apply_async().get()"].median
    for name, values in latency.items():
        table.add(
            f"{name} ({count} sequential)",
            _ms(values.median),
            _ms(values.percentile(0.99)),
            f"{_ms(values.low)}-{_ms(values.high)}",
            ratio(values.median, celery),
        )
    return table


def _breakdown_table(breakdown: dict[str, Samples]) -> Table:
    table = Table(["where the polled no-op job's time goes", "median ms", "p99 ms"])
    for name, values in breakdown.items():
        table.add(name, _ms(values.median), _ms(values.percentile(0.99)))
    return table


def _throughput_table(count: int, rates: dict[str, tuple[float, float]]) -> Table:
    table = Table(["way", "drain jobs/s", "vs bare Celery", "submit rate jobs/s"])
    bare = rates["bare"][0]
    names = {"arrayq": "arrayq no-op jobs", "bare": "bare Celery empty tasks"}
    for key, (drain, submitted) in rates.items():
        table.add(
            f"{names[key]} ({count:,} queued, {WORKERS} workers)",
            f"{drain:,.0f}",
            ratio(drain, bare),
            f"{submitted:,.0f}",
        )
    return table


def _targets(latency: dict[str, Samples], arrayq_rate: float, bare_rate: float) -> list[Target]:
    celery = latency["bare Celery apply_async().get()"].median
    targets = [
        Target(
            f"p50 {name.removeprefix('arrayq: ')} vs bare Celery",
            f"<= {LATENCY_LIMIT}x",
            f"{values.median / celery:.2f}x",
            values.median / celery <= LATENCY_LIMIT,
        )
        for name, values in latency.items()
        if name.startswith("arrayq")
    ]
    targets.append(
        Target(
            "throughput vs bare Celery",
            f">= {THROUGHPUT_SHARE:.0%}",
            f"{arrayq_rate / bare_rate:.0%}",
            arrayq_rate / bare_rate >= THROUGHPUT_SHARE,
        )
    )
    return targets


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"
