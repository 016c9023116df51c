"""One run of one job: claim it, load its inputs, run the op, store the result.

The job record is the truth. A run first claims the job (a guarded
transition), so a cancelled, finished or live-elsewhere job is left alone, and
it finishes with a guarded transition, so a late run never overwrites a
cancelled job.
"""

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from arrayq.storage import codecs, inline, keys
from arrayq.storage.digests import array_digest
from arrayq.storage.errors import ArrayqError, Conflict
from arrayq.storage.jobs import Job, JobStatus, JobStore
from arrayq.storage.retry import retry_unavailable
from arrayq.storage.settings import Settings
from arrayq.storage.stores import ObjectStore
from arrayq.worker.monitor import JobCancelled, RunMonitor
from arrayq.worker.ops import Op, get_op

log = logging.getLogger(__name__)
STORAGE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    jobs: JobStore
    store: ObjectStore
    worker_name: str


class ResultTooLarge(ArrayqError):
    type = "result_too_large"


class InvalidResult(ArrayqError):
    type = "invalid_result"


def run_job(ctx: WorkerContext, job_id: str) -> None:
    run_id = keys.new_id()
    job = _claim(ctx, job_id, run_id)
    if job is None:
        return
    with RunMonitor(ctx.jobs, job_id, run_id, interval=_monitor_interval(ctx.settings)) as monitor:
        try:
            result = _compute(ctx, job, monitor)
            meta = _store_result(ctx, job, get_op(job.op), result)
        except JobCancelled:
            log.info("job %s stopped: cancelled", job_id)
            return
        except Exception as exc:
            error_type, message = describe_error(exc)
            log.info("job %s failed: %s: %s", job_id, error_type, message)
            ctx.jobs.fail(job_id, error_type=error_type, message=message, run_id=run_id)
            return
    digests = {"result": array_digest(result)}
    if not ctx.jobs.succeed(job_id, run_id=run_id, result=meta, digests=digests):
        log.info("job %s finished but no longer owned by this run; result not recorded", job_id)


def _claim(ctx: WorkerContext, job_id: str, run_id: str) -> Job | None:
    try:
        job = ctx.jobs.start(
            job_id,
            run_id=run_id,
            worker=ctx.worker_name,
            stale_after=ctx.settings.heartbeat_timeout_seconds,
            max_attempts=ctx.settings.max_attempts,
        )
    except Conflict as exc:
        ctx.jobs.fail(
            job_id,
            error_type="worker_lost",
            message=str(exc),
            allowed=(JobStatus.QUEUED, JobStatus.RUNNING),
        )
        return None
    if job is None:
        log.info("job %s not started: finished, cancelled or running elsewhere", job_id)
    return job


def _monitor_interval(settings: Settings) -> float:
    # Often enough that a cancel stops a running op well within 2 seconds.
    return min(settings.heartbeat_seconds, 0.5)


def _compute(ctx: WorkerContext, job: Job, monitor: RunMonitor) -> np.ndarray:
    op = get_op(job.op)
    params = op.params.model_validate(job.params)
    shapes = {name: tuple(spec["shape"]) for name, spec in job.inputs.items()}
    if op.result_nbytes is not None:
        check_result_size(op.result_nbytes(params, shapes), ctx.settings.max_result_bytes)
    inputs = {name: _load_input(ctx, job, name, spec) for name, spec in job.inputs.items()}
    with monitor.interruptible():
        result = op.func(params, monitor.progress, **inputs)
    return validate_result(op, result, ctx.settings.max_result_bytes)


def _load_input(ctx: WorkerContext, job: Job, name: str, spec: dict[str, Any]) -> np.ndarray:
    if name in job.inline:
        return inline.decode(job.inline[name], spec["descr"], spec["shape"])

    def load() -> np.ndarray:
        with ctx.store.open(spec["key"]) as stream:
            return codecs.read_npy(stream, max_bytes=ctx.settings.max_input_bytes)

    return retry_unavailable(load, STORAGE_RETRY_DELAYS)


def check_result_size(nbytes: int, limit: int) -> None:
    if nbytes > limit:
        raise ResultTooLarge(
            f"the result would take {nbytes} bytes, over the limit of {limit} "
            "(ARRAYQ_MAX_RESULT_BYTES)"
        )


def validate_result(op: Op, result: object, max_bytes: int) -> np.ndarray:
    array = np.asarray(result)
    if not array.flags.c_contiguous:  # ascontiguousarray would turn 0-d into 1-d
        array = np.ascontiguousarray(array)
    try:
        codecs.check_dtype(array.dtype)
    except ArrayqError as exc:
        raise InvalidResult(f"op {op.name!r} returned an unsupported array: {exc}") from exc
    check_result_size(array.nbytes, max_bytes)
    if op.result == "image" and not codecs.is_image(array):
        raise InvalidResult(
            f"op {op.name!r} must return a uint8 H x W, H x W x 3 or H x W x 4 image, "
            f"got {array.dtype} {array.shape}"
        )
    return array


def result_formats(array: np.ndarray, kind: str, inline_max_bytes: int) -> list[str]:
    formats = ["json"] if array.nbytes <= inline_max_bytes else []
    formats.append("npy")
    if kind == "image" or (array.ndim == 2 and array.dtype.kind in "biuf"):
        formats.append("png")
    return formats


def _store_result(ctx: WorkerContext, job: Job, op: Op, array: np.ndarray) -> dict[str, Any]:
    npy_key = keys.result_object(job.tenant, job.id, "npy")
    retry_unavailable(
        lambda: ctx.store.write(npy_key, codecs.npy_chunks(array), codecs.npy_nbytes(array)),
        STORAGE_RETRY_DELAYS,
    )
    if op.result == "image":
        png = codecs.encode_png(array)
        png_key = keys.result_object(job.tenant, job.id, "png")
        retry_unavailable(lambda: ctx.store.write(png_key, [png], len(png)), STORAGE_RETRY_DELAYS)
    return {
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "nbytes": int(array.nbytes),
        "kind": op.result,
        "formats": result_formats(array, op.result, ctx.settings.inline_max_bytes),
    }


def describe_error(exc: BaseException) -> tuple[str, str]:
    """The `error` of a failed job: a type and the exception's text."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return "timeout", "the job ran past its time limit"
    if isinstance(exc, ArrayqError):
        return exc.type, str(exc)
    message = str(exc) or type(exc).__name__
    return type(exc).__name__, message
