"""A bare Celery app with a Redis result backend and one empty task: the floor that
arrayq's job overhead is measured against. Its workers run as
`celery -A bench.bare_celery worker` with `BENCH_CELERY_URL` set."""

import os
import time

from celery import Celery

QUEUE = "bench-bare"
TASK_NAME = "bench.empty"


def create_bare_celery(redis_url: str) -> Celery:
    """Same serializer, acknowledgement and prefetch settings as arrayq's app, so the
    difference is what arrayq does around a task, not the delivery guarantees."""
    app = Celery("bench_bare", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.task(name=TASK_NAME)(finished_at)
    return app


def finished_at() -> float:
    """The empty task; it returns when it ran, for the throughput figure."""
    return time.time()


app = create_bare_celery(os.environ.get("BENCH_CELERY_URL", "redis://127.0.0.1:6379/1"))
