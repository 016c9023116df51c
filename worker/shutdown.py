"""Stopping a worker without leaving its jobs stranded.

On SIGTERM Celery's warm shutdown waits for the running tasks. This timer
bounds that wait to ARRAYQ_WORKER_SHUTDOWN_SECONDS: then every job still
running here is handed back (running -> queued, guarded by its run id) and its
message published again, so another worker starts it at once instead of after
the heartbeat timeout. The runs here see that they lost their job and stop
within a monitor interval; one stuck in C code is ended by a cold shutdown,
which terminates the pool.
"""

import logging
import os
import signal
import threading
import time

from celery import Celery
from celery.worker import state

from arrayq.storage.errors import ArrayqError
from arrayq.storage.jobs import JobStatus
from arrayq.worker.enqueue import enqueue
from arrayq.worker.ops import UnknownOp, get_op
from arrayq.worker.runner import WorkerContext

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
# After a hand-back, how long the runs get to notice and stop before the pool is terminated.
STOP_GRACE_SECONDS = 3.0


def active_job_ids() -> list[str]:
    """Ids of the tasks this worker's pool is running (task id = job id)."""
    return [request.id for request in list(state.active_requests)]


def hand_back(ctx: WorkerContext, app: Celery, job_ids: list[str], node: str) -> list[str]:
    """Queue again the jobs among `job_ids` that this worker's runs still own."""
    handed = []
    for job_id in job_ids:
        try:
            job = ctx.jobs.get(job_id)
            if job.status != JobStatus.RUNNING or job.worker != node:
                continue
            if ctx.jobs.requeue(job_id, run_id=job.run_id):
                enqueue(app, job_id, get_op(job.op), ctx.settings)
                handed.append(job_id)
                log.warning("job %s handed back: the worker is shutting down", job_id)
        except (ArrayqError, UnknownOp) as exc:
            log.warning("could not hand back job %s: %s", job_id, exc)
    return handed


class ShutdownTimer(threading.Thread):
    def __init__(self, ctx: WorkerContext, app: Celery, node: str) -> None:
        super().__init__(name="arrayq-shutdown", daemon=True)
        self.ctx, self.app, self.node = ctx, app, node

    def run(self) -> None:
        if not self._wait_for_runs(self.ctx.settings.worker_shutdown_seconds):
            hand_back(self.ctx, self.app, active_job_ids(), self.node)
            if not self._wait_for_runs(STOP_GRACE_SECONDS):
                log.warning("runs did not stop after their hand-back; terminating the pool")
                os.kill(os.getpid(), signal.SIGQUIT)  # Celery's cold shutdown

    @staticmethod
    def _wait_for_runs(seconds: float) -> bool:
        """True once no task runs here; False when `seconds` passed first."""
        deadline = time.monotonic() + seconds
        while active_job_ids():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True
