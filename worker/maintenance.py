"""Background duties of every worker process, all idempotent across workers:
re-queue jobs whose worker died (stale heartbeat), and delete expired objects.

Re-queueing by heartbeat bounds the delay to about `heartbeat_timeout_seconds`
plus one sweep, instead of the broker's visibility timeout (an hour).
"""

import logging
import threading
import time
from datetime import timedelta

from celery import Celery

from storage.errors import ArrayqError
from storage.jobs import JobStatus
from worker.enqueue import enqueue
from worker.ops import UnknownOp, get_op
from worker.runner import WorkerContext

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5.0


def requeue_orphans(ctx: WorkerContext, app: Celery) -> list[str]:
    """Put back on the queue every running job whose heartbeat went stale."""
    cutoff = time.time() - ctx.settings.heartbeat_timeout_seconds
    requeued = []
    for job_id in ctx.jobs.running_ids(heartbeat_before=cutoff):
        try:
            job = ctx.jobs.get(job_id)
            if job.status != JobStatus.RUNNING or job.heartbeat >= cutoff:
                continue
            if ctx.jobs.requeue(job_id, run_id=job.run_id):
                enqueue(app, job_id, get_op(job.op), ctx.settings)
                requeued.append(job_id)
                log.warning("job %s lost its worker; re-queued", job_id)
        except (ArrayqError, UnknownOp) as exc:
            log.warning("could not re-queue job %s: %s", job_id, exc)
    return requeued


class Maintenance(threading.Thread):
    def __init__(self, ctx: WorkerContext, app: Celery) -> None:
        super().__init__(name="arrayq-maintenance", daemon=True)
        self.ctx = ctx
        self.app = app
        self.stopping = threading.Event()
        self._last_cleanup = 0.0

    def run(self) -> None:
        while not self.stopping.wait(SWEEP_SECONDS):
            try:
                requeue_orphans(self.ctx, self.app)
                self._cleanup_if_due()
            except ArrayqError as exc:
                log.warning("maintenance skipped: %s", exc)

    def _cleanup_if_due(self) -> None:
        if time.monotonic() - self._last_cleanup < self.ctx.settings.cleanup_interval_seconds:
            return
        self._last_cleanup = time.monotonic()
        ttl = timedelta(seconds=self.ctx.settings.result_ttl_seconds)
        deleted = self.ctx.store.delete_older_than(ttl)
        if deleted:
            log.info("deleted %d expired objects", deleted)
