"""The FastAPI + Celery template a user would write instead of arrayq: `POST /tasks`
submits a Celery task, `GET /tasks/{id}` reads its `AsyncResult`. Results live in
Celery's Redis result backend with its JSON serializer, so an array travels as
`.tolist()`. Everything else is Celery's and FastAPI's defaults.

The workers run as `celery -A bench.peer_apps.template:celery_app worker`, the API
as `uvicorn bench.peer_apps.template:api`, both with `BENCH_PEER_REDIS_URL` set."""

import gc
import os
from typing import Any

import numpy as np
from celery import Celery
from celery.result import AsyncResult
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from bench.peer_apps import jobs

REDIS_URL = os.environ.get("BENCH_PEER_REDIS_URL", "redis://127.0.0.1:6379/0")

celery_app = Celery("template", broker=REDIS_URL, backend=REDIS_URL)
celery_app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@celery_app.task(name="template.noop")
def noop() -> None:
    jobs.noop()


@celery_app.task(name="template.floats")
def floats(n: int = jobs.FLOATS) -> list[float]:
    return jobs.floats(n).tolist()


@celery_app.task(name="template.echo")
def echo(x: list[Any]) -> list[Any]:
    return jobs.echo(np.asarray(x)).tolist()


@celery_app.task(name="template.nan32")
def nan32() -> list[float]:
    return jobs.nan32().tolist()


TASKS = {"noop": noop, "floats": floats, "echo": echo, "nan32": nan32}

# As written, this API wedges a worker thread within a few dozen jobs: the cyclic GC
# runs an `AsyncResult.__del__` inside another one's `PubSub.unsubscribe`, on the same
# connection (seen with py-spy; Celery's open PR #10326). Without the cyclic GC,
# results are freed by reference counting alone and never from inside that call.
gc.disable()

api = FastAPI()


@api.post("/tasks", status_code=201)
def submit(payload: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008 (FastAPI's way)
    task = TASKS[payload["op"]].delay(*payload.get("args", []))
    return JSONResponse({"task_id": task.id}, status_code=201)


@api.get("/tasks/{task_id}")
def status(task_id: str) -> JSONResponse:
    result = AsyncResult(task_id, app=celery_app)
    body = {"task_id": task_id, "task_status": result.status, "task_result": result.result}
    return JSONResponse(body)
