"""Putting a job on its queue: the one call the API makes into the worker side."""

from celery import Celery
from kombu.exceptions import OperationalError

from arrayq.storage.errors import BrokerUnavailable
from arrayq.storage.settings import Settings
from arrayq.worker.celery_app import TASK_NAME
from arrayq.worker.ops import Op


def enqueue(app: Celery, job_id: str, op: Op, settings: Settings) -> None:
    soft = op.soft_time_limit or settings.soft_time_limit_seconds
    hard = op.hard_time_limit or max(settings.hard_time_limit_seconds, soft + 5)
    # Celery's prefork pool arms the hard timer only when the soft one fires.
    soft = min(soft, hard)
    try:
        app.send_task(
            TASK_NAME,
            args=[job_id],
            queue=op.queue,
            task_id=job_id,
            soft_time_limit=soft,
            time_limit=hard,
        )
    except OperationalError as exc:
        raise BrokerUnavailable(f"cannot queue the job: {exc}") from exc
