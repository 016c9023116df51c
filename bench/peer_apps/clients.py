"""Each peer's client, used the way its docs show: submit a job, wait for it, get
its result back as an array. Each also reads back what its peer stored in Redis
and when each job finished (the peer's own record), for the drain rate."""

import asyncio
import base64
import json
import time
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import redis
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job as ArqJob
from rq import Queue
from rq.job import Job as RqJob
from rq.results import Result

from bench.peer_apps import jobs

# The pause between two polls, as in every polling client of the benchmarks.
POLL_SECONDS = 0.002
TIMEOUT = 120.0
QUEUE = "bench-peers"


class TemplateClient:
    """The FastAPI + Celery template over HTTP: POST, then GET every 2 ms until the
    task is final; its result comes in that last GET, as JSON lists."""

    def __init__(self, redis_url: str, app_url: str) -> None:
        self._app_url = app_url
        self._http = httpx.Client(base_url=app_url, timeout=TIMEOUT)
        self._redis = redis.Redis.from_url(redis_url)

    def submit(self, op: str, *args: Any) -> str:
        response = self._http.post("/tasks", json={"op": op, "args": list(args)})
        response.raise_for_status()
        return response.json()["task_id"]

    def result(self, task_id: str) -> Any:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            response = self._http.get(f"/tasks/{task_id}")
            if response.status_code != 200:
                # uvicorn closes the connection after the app raised: start anew.
                self._http.close()
                self._http = httpx.Client(base_url=self._app_url, timeout=TIMEOUT)
                raise RuntimeError(f"GET /tasks/{{id}} answered {response.status_code}")
            body = response.json()
            if body["task_status"] == "SUCCESS":
                result = body["task_result"]
                return None if result is None else np.asarray(result)
            if body["task_status"] == "FAILURE":
                raise RuntimeError(f"task failed: {body['task_result']}")
            time.sleep(POLL_SECONDS)
        raise TimeoutError(task_id)

    def stored(self, task_id: str) -> bytes:
        return self._redis.get(f"celery-task-meta-{task_id}") or b""

    def finished_at(self, task_id: str) -> float | None:
        raw = self._redis.get(f"celery-task-meta-{task_id}")
        if raw is None:
            return None
        return datetime.fromisoformat(json.loads(raw)["date_done"]).timestamp()


class RqClient:
    """RQ: `Queue.enqueue`, then `job.latest_result(timeout=...)`, which blocks on
    the job's Redis results stream (no polling)."""

    def __init__(self, redis_url: str) -> None:
        self._redis = redis.Redis.from_url(redis_url)
        self._queue = Queue(QUEUE, connection=self._redis)
        self._jobs: dict[str, Any] = {}

    def submit(self, op: str, *args: Any) -> str:
        job = self._queue.enqueue(getattr(jobs, op), *args)
        self._jobs[job.id] = job
        return job.id

    def result(self, job_id: str) -> Any:
        result = self._jobs.pop(job_id).latest_result(timeout=int(TIMEOUT))
        if result is None or result.type != Result.Type.SUCCESSFUL:
            raise RuntimeError(f"RQ job {job_id}: {result and result.exc_string}")
        return result.return_value

    def stored(self, job_id: str) -> bytes:
        entries = self._redis.xrevrange(f"rq:results:{job_id}", count=1)
        return base64.b64decode(entries[0][1][b"return_value"]) if entries else b""

    def finished_at(self, job_id: str) -> float | None:
        ended = RqJob.fetch(job_id, connection=self._redis).ended_at
        return None if ended is None else ended.timestamp()


class ArqClient:
    """arq: `enqueue_job`, then `job.result(poll_delay=...)`, which polls Redis."""

    def __init__(self, redis_url: str) -> None:
        self._loop = asyncio.Runner()
        self._pool = self._loop.run(create_pool(RedisSettings.from_dsn(redis_url)))
        self._jobs: dict[str, Any] = {}

    def submit(self, op: str, *args: Any) -> str:
        job = self._loop.run(self._pool.enqueue_job(op, *args))
        self._jobs[job.job_id] = job
        return job.job_id

    def result(self, job_id: str) -> Any:
        job = self._jobs.pop(job_id)
        return self._loop.run(job.result(timeout=TIMEOUT, poll_delay=POLL_SECONDS))

    def stored(self, job_id: str) -> bytes:
        return self._loop.run(self._pool.get(f"arq:result:{job_id}")) or b""

    def finished_at(self, job_id: str) -> float | None:
        info = self._loop.run(ArqJob(job_id, self._pool).result_info())
        return None if info is None else info.finish_time.timestamp()


Client = TemplateClient | RqClient | ArqClient


def connect(peer: str, redis_url: str, app_url: str | None) -> Client:
    if peer == "template":
        assert app_url, "the template needs its API's URL"
        return TemplateClient(redis_url, app_url)
    if peer == "rq":
        return RqClient(redis_url)
    if peer == "arq":
        return ArqClient(redis_url)
    raise ValueError(f"unknown peer {peer!r}")
