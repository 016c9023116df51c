"""Fault injection for the integration tests: services of their own, killing
processes, restarting Redis, and reading what the system did."""

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from arrayq.client.processes import Managed, redis_answers, wait_until, workers_ready
from arrayq.storage import keys
from tests.support.jobs import wait_for
from tests.support.service import Service, start_service

# Short enough that a dead run is noticed in seconds, long enough for a loaded machine.
FAST_HEARTBEAT = {
    "ARRAYQ_HEARTBEAT_SECONDS": "0.5",
    "ARRAYQ_HEARTBEAT_TIMEOUT_SECONDS": "3",
}


@contextmanager
def own_service(root: Path, *, workers: int = 2, **kwargs: Any) -> Iterator[Service]:
    """A service for one test alone, so it may break it."""
    service = start_service(root, workers=workers, **kwargs)
    try:
        yield service
    finally:
        service.stop()


def wait_workers(service: Service, count: int, timeout: float = 60.0) -> None:
    wait_until(lambda: workers_ready(service.redis_url, count), timeout, f"{count} workers")


def ensure_workers(service: Service, count: int) -> None:
    """Start workers until `count` of the service's workers are alive."""
    alive = sum(worker.alive() for worker in service.workers)
    for _ in range(count - alive):
        service.start_worker()
    wait_workers(service, count)


def worker_log(service: Service) -> str:
    return "".join(
        path.read_text(errors="replace") for path in sorted(service.logs.glob("worker-*.log"))
    )


def pool_children(pid: int) -> list[int]:
    """The pool processes of a Celery worker: the children of its main process."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.extend(int(child) for child in children)
    return found


def pool_child(worker: Managed, timeout: float = 30.0) -> int:
    children: list[int] = []

    def found() -> bool:
        children[:] = pool_children(worker.pid)
        return len(children) == 1

    wait_until(found, timeout, f"the pool process of worker {worker.pid}")
    return children[0]


def kill(pid: int, signum: int = signal.SIGKILL) -> None:
    os.kill(pid, signum)


def wait_status(
    http: httpx.Client, job_id: str, statuses: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    document = wait_for(http, job_id, statuses | {"succeeded", "failed", "cancelled"}, timeout)
    assert document["status"] in statuses, document
    return document


def running_on(service: Service, http: httpx.Client, job_id: str) -> Managed:
    """The worker whose pool runs the job (from the job record's `worker` field)."""
    wait_status(http, job_id, {"running"})
    fields = record(service, job_id)
    for worker in service.workers:
        if worker.alive() and fields.get("worker", "").startswith(f"arrayq-{worker.pid}@"):
            return worker
    raise AssertionError(f"no live worker runs job {job_id}: {fields}")


def wait_attempt(
    http: httpx.Client, job_id: str, attempt: int, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until the given attempt of the job has started."""
    deadline = time.monotonic() + timeout
    while True:
        job = http.get(f"/jobs/{job_id}").json()
        if job["attempts"] >= attempt or job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"attempt {attempt} of job {job_id} not started in {timeout}s")
        time.sleep(0.05)


def record(service: Service, job_id: str) -> dict[str, str]:
    """The raw job record in Redis (with fields the API does not show)."""
    with redis.Redis.from_url(service.redis_url, decode_responses=True) as client:
        return client.hgetall(keys.job_key(job_id))


def drop_message(service: Service, queue: str, job_id: str) -> bool:
    """Take the job's message off the broker queue, as a lost message."""
    with redis.Redis.from_url(service.redis_url, decode_responses=True) as client:
        for raw in client.lrange(queue, 0, -1):
            if orjson.loads(raw)["headers"]["id"] == job_id:
                return bool(client.lrem(queue, 1, raw))
    return False


def restart_redis(service: Service, down_for: Callable[[], None] = lambda: None) -> None:
    """Stop the service's Redis, call `down_for()` while it is down, start it again
    on the same port and data folder (append-only file on, so nothing is lost)."""
    service.redis.stop()
    try:
        down_for()
    finally:
        service.redis = Managed(
            "redis", service.redis.argv, log_path=service.redis.log_path
        ).start()
        wait_until(lambda: redis_answers(service.redis_url), 30, "Redis")


def result_files(service: Service, job_id: str = "") -> list[Path]:
    """Result objects of a service on local-folder storage (of one job, or all)."""
    folder = Path(service.storage_url.removeprefix("file://")) / "results"
    return sorted(folder.glob(f"*/{job_id}/*/*.npy") if job_id else folder.rglob("*.npy"))


def elapsed(since: float) -> float:
    return time.monotonic() - since
