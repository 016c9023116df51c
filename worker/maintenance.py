"""Background duties of every worker process, all idempotent across workers:
re-queue jobs whose worker died (stale heartbeat), queue again jobs whose
message was lost, and delete the objects of expired jobs (each job's own
lifetime; a rule by age catches anything left).

Re-queueing by heartbeat bounds the delay to about `heartbeat_timeout_seconds`
plus one sweep. A message can also vanish with no run to notice: kombu pops it
(BRPOP) before recording it as taken, so a worker killed in between loses it.
Such a job stays queued with no message anywhere; it is queued again once it
has waited a visibility timeout. A duplicate message is harmless: only one
run can claim a job.
"""

import logging
import time
from datetime import timedelta

from celery import Celery

from arrayq.storage import broker, keys
from arrayq.storage.errors import ArrayqError, NotFound
from arrayq.storage.fairshare import FairShare
from arrayq.storage.jobs import JobStatus
from arrayq.storage.settings import Settings
from arrayq.worker.enqueue import enqueue
from arrayq.worker.ops import UnknownOp, get_op
from arrayq.worker.periodic import Periodic
from arrayq.worker.runner import WorkerContext

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5.0
# A write still unfinished after this long was cut off (its process died): body
# idle timeouts and op time limits end every live write far sooner.
LEFTOVER_AGE = timedelta(hours=1)


def sweep_seconds(settings: Settings) -> float:
    return min(SWEEP_SECONDS, settings.heartbeat_timeout_seconds / 2)


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
                # What the dead run wrote is never the result; if it is only
                # stopped and wakes up, its success is refused and it deletes its own.
                ctx.store.delete_prefix(keys.run_prefix(job.tenant, job_id, job.run_id))
        except (ArrayqError, UnknownOp) as exc:
            log.warning("could not re-queue job %s: %s", job_id, exc)
    return requeued


def requeue_lost_messages(ctx: WorkerContext, app: Celery) -> list[str]:
    """Queue again every job queued for a visibility timeout with no message for it."""
    cutoff = time.time() - ctx.settings.visibility_timeout_seconds
    waiting = ctx.jobs.queued_ids(queued_before=cutoff)
    if not waiting or not _messages_may_be_missing(ctx):
        return []
    present = broker.job_ids(ctx.jobs.redis)
    requeued = []
    for job_id in waiting:
        if job_id not in present and _enqueue_again(ctx, app, job_id):
            requeued.append(job_id)
            log.warning("job %s had no message on the queue; queued again", job_id)
    return requeued


def _messages_may_be_missing(ctx: WorkerContext) -> bool:
    """Cheap test before reading the queues: fewer messages (leaving out one
    per running job) than queued jobs."""
    messages = broker.message_count(ctx.jobs.redis) - ctx.jobs.running_count()
    return ctx.jobs.queued_count() > messages


def _enqueue_again(ctx: WorkerContext, app: Celery, job_id: str) -> bool:
    try:
        job = ctx.jobs.get(job_id)
    except NotFound:
        ctx.jobs.drop_queued(job_id)
        return False
    if job.status != JobStatus.QUEUED:
        return False
    ctx.jobs.touch_queued(job_id)
    try:
        enqueue(app, job_id, get_op(job.op), ctx.settings)
    except UnknownOp:
        log.warning("job %s had no message on the queue; its op %s is unknown", job_id, job.op)
        return False
    return True


def settle_waiting(ctx: WorkerContext) -> list[str]:
    """Fail the waiting jobs that wait for a job that can no longer succeed (its
    final transition happened, but the process that was to fail them died
    first), and forget those no longer waiting. Releases happen in the success
    transition itself; a lost message after one is `requeue_lost_messages`' job."""
    failed = []
    for job_id in ctx.jobs.waiting_ids():
        try:
            job = ctx.jobs.get(job_id)
        except NotFound:
            ctx.jobs.forget_waiting(job_id)
            continue
        if job.status != JobStatus.QUEUED or not job.waiting_for:
            ctx.jobs.forget_waiting(job_id)
            continue
        for other in ctx.jobs.waits_of(job_id):
            status = _status_or_expired(ctx, other)
            if status not in ("queued", "running", "succeeded"):
                ctx.jobs.fail_dependents(other, status, [job_id])
                failed.append(job_id)
                log.warning("job %s waited for %s, which is %s; failed", job_id, other, status)
                break
    return failed


def _status_or_expired(ctx: WorkerContext, job_id: str) -> str:
    try:
        return ctx.jobs.get(job_id).status.value
    except NotFound:
        return "expired"


def fail_past_hard_limit(ctx: WorkerContext, job_id: str, worker_name: str, limit: float) -> bool:
    """Fail a job whose pool process Celery killed at the hard time limit.

    Runs in the worker's main process, which knows only the job id: the run it
    fails is the one this worker started, if the job is still running there."""
    job = ctx.jobs.get(job_id)
    if job.status != JobStatus.RUNNING or job.worker != worker_name:
        return False
    message = f"the job ran past its hard time limit of {limit:g} s and was stopped"
    return ctx.jobs.fail(job_id, error_type="timeout", message=message, run_id=job.run_id)


def delete_expired_objects(ctx: WorkerContext) -> int:
    """Delete the objects of jobs past their lifetime; returns how many jobs."""
    expired = ctx.jobs.expired_objects(before=time.time())
    for job_id, tenant in expired:
        if ctx.jobs.is_needed(job_id):  # a job that references it has not started
            continue
        for prefix in keys.job_object_prefixes(tenant, job_id):
            ctx.store.delete_prefix(prefix)
        ctx.jobs.objects_deleted(job_id, tenant)
    return len(expired)


def repair_fair_share(ctx: WorkerContext, fair: FairShare) -> int:
    """Free the fair-share room of jobs that ended without leaving it, and send
    what the backlogs release; returns how many jobs were released."""
    released = 0
    for share in fair.tenants():
        pairs = fair.repair(share.tenant, ctx.settings.tenant_max_active, time.time())
        if pairs and ctx.jobs.on_release is not None:
            ctx.jobs.on_release(pairs)
        released += len(pairs)
    return released


class Maintenance(Periodic):
    what = "maintenance sweep"

    def __init__(self, ctx: WorkerContext, app: Celery) -> None:
        super().__init__(name="arrayq-maintenance")
        self.ctx = ctx
        self.app = app
        self._last_cleanup = 0.0
        self.fair = FairShare(ctx.jobs.redis)

    def interval(self) -> float:
        return sweep_seconds(self.ctx.settings)

    def step(self) -> None:
        requeue_orphans(self.ctx, self.app)
        requeue_lost_messages(self.ctx, self.app)
        settle_waiting(self.ctx)
        delete_expired_objects(self.ctx)
        repair_fair_share(self.ctx, self.fair)
        self._cleanup_if_due()

    def _cleanup_if_due(self) -> None:
        if time.monotonic() - self._last_cleanup < self.ctx.settings.cleanup_interval_seconds:
            return
        self._last_cleanup = time.monotonic()
        ttl = timedelta(seconds=self.ctx.settings.result_ttl_seconds)
        deleted = self.ctx.store.delete_older_than(ttl)
        if deleted:
            log.info("deleted %d expired objects", deleted)
        leftovers = self.ctx.store.delete_leftovers(LEFTOVER_AGE)
        if leftovers:
            log.info("removed %d leftovers of writes cut off by a killed process", leftovers)
        pruned = self.ctx.jobs.prune_indexes()
        if pruned:
            log.info("removed %d expired jobs from the listing indexes", pruned)
