"""A real arrayq on this machine for tests: Redis, worker processes and the API,
started with the same commands as `arrayq up`, on free ports."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from arrayq.client.processes import (
    Managed,
    arrayq_command,
    free_port,
    http_answers,
    redis_answers,
    redis_process,
    wait_until,
    workers_ready,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    url: str
    redis_url: str
    storage_url: str
    env: dict[str, str]
    logs: Path
    redis: Managed
    api: Managed
    workers: list[Managed] = field(default_factory=list)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def start_worker(self, *args: str) -> Managed:
        index = len(self.workers)
        worker = Managed(
            "worker",
            arrayq_command("worker", *args),
            env=self.env,
            log_path=self.logs / f"worker-{index}.log",
        ).start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for process in (self.api, *self.workers, self.redis):
            process.stop(timeout=15)


def start_service(
    root: Path,
    *,
    workers: int = 2,
    storage_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Service:
    root.mkdir(parents=True, exist_ok=True)
    redis_port, api_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    storage_url = storage_url or f"file://{root / 'data'}"
    env = {
        **os.environ,
        "ARRAYQ_REDIS_URL": redis_url,
        "ARRAYQ_STORAGE_URL": storage_url,
        "ARRAYQ_OPS_MODULES": "tests.support.user_ops",
        "PYTHONPATH": str(REPO_ROOT),
        **(extra_env or {}),
    }
    redis = redis_process(redis_port, root / "redis").start()
    wait_until(lambda: redis_answers(redis_url), 15, "Redis")
    api = Managed(
        "api",
        arrayq_command("api", "--port", str(api_port)),
        env=env,
        log_path=root / "api.log",
    ).start()
    service = Service(
        url=f"http://127.0.0.1:{api_port}",
        redis_url=redis_url,
        storage_url=storage_url,
        env=env,
        logs=root,
        redis=redis,
        api=api,
    )
    try:
        for _ in range(workers):
            service.start_worker()
        wait_until(lambda: http_answers(f"{service.url}/healthz"), 30, "the API")
        wait_until(lambda: workers_ready(redis_url, workers), 60, "the workers")
    except BaseException:
        service.stop()
        raise
    return service
