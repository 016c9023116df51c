"""The Celery application: JSON only, late acknowledgement, one task reserved at a time."""

from celery import Celery
from kombu import Exchange, Queue

from storage.settings import Settings

TASK_NAME = "arrayq.run_job"
QUEUES = ("default", "long")


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
        broker_transport_options={
            # The stale-heartbeat reaper re-queues a dead worker's job within a
            # minute; kombu's own redelivery of unacknowledged messages is the
            # slower second line, tuned so it does not fire for live long jobs.
            "visibility_timeout": 3600,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=True,
        worker_soft_shutdown_timeout=10.0,
    )
    app.autodiscover_tasks(["worker"], related_name="tasks", force=True)
    return app
