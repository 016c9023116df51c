"""The Celery application: JSON only, late acknowledgement, one task reserved at a time.
The API builds it as a producer only (`create_celery`), workers with their task."""

import os
import socket

from celery import Celery
from kombu import Exchange, Queue

from arrayq.storage.broker import QUEUES
from arrayq.storage.settings import Settings

TASK_NAME = "arrayq.run_job"


def node_name(pid: int | None = None) -> str:
    """The Celery node name of the worker whose main process has `pid`: unique on the host."""
    return f"arrayq-{pid or os.getpid()}@{socket.gethostname()}"


def create_celery(settings: Settings) -> Celery:
    app = Celery("arrayq", broker=settings.redis_url, set_as_current=True)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        task_default_queue="default",
        task_soft_time_limit=settings.soft_time_limit_seconds,
        task_time_limit=settings.hard_time_limit_seconds,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # A publish while Redis is down fails within a few seconds (the API
        # answers 503) instead of retrying for a long time.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        broker_transport_options=transport_options(settings),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=True,
        worker_soft_shutdown_timeout=10.0,
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,
    )
    return app


def create_worker_celery(settings: Settings) -> Celery:
    """The app of a worker: the producer's, plus the task it runs. The API
    only sends tasks by name and never loads the worker's modules."""
    app = create_celery(settings)
    app.autodiscover_tasks(["arrayq.worker"], related_name="tasks", force=True)
    return app


def transport_options(settings: Settings) -> dict[str, float]:
    """Redelivery of unacknowledged messages, set deliberately.

    kombu puts a message taken by a worker that never acknowledged it back on
    its queue once it is `visibility_timeout` old, at its next sweep. kombu 5.7
    sweeps every `unacked_restore_interval` x `unacked_restore_throttle` s, 10 x 10
    by default: measured with a 5 s timeout, a dead worker's message came back
    after 48 s (up to 105 s by that period). Sweeping every min(timeout, 10) s
    brought it back after 7.8 s. Running jobs are re-queued sooner by their stale
    heartbeat; this covers a worker that died between taking a message and
    claiming its job. A copy of a live job's message steps aside
    (`JobStore.start`), so redelivery never runs a job twice.
    """
    timeout = settings.visibility_timeout_seconds
    return {
        "visibility_timeout": timeout,
        "unacked_restore_interval": min(timeout, 10.0),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
