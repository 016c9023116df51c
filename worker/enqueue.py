"""Putting a job on its queue: the one call the API makes into the worker side."""

import logging
from collections.abc import Callable

from celery import Celery
from kombu.exceptions import OperationalError

from arrayq.storage.errors import BrokerUnavailable
from arrayq.storage.settings import Settings
from arrayq.worker.celery_app import TASK_NAME
from arrayq.worker.ops import Op, UnknownOp, get_op

log = logging.getLogger(__name__)


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


def release_sender(app: Celery, settings: Settings) -> Callable[[list[tuple[str, str]]], None]:
    """What `JobStore.on_release` calls: send the messages of jobs that a
    transition moved onto the queue. One that cannot be sent now is left to the
    workers' lost-message sweep (the job is in the queued set already)."""

    def send(released: list[tuple[str, str]]) -> None:
        for job_id, op_name in released:
            try:
                enqueue(app, job_id, get_op(op_name), settings)
            except (BrokerUnavailable, UnknownOp) as exc:
                log.warning("job %s released but not sent (the sweep will): %s", job_id, exc)

    return send
