"""One run of one job: claim it, load its inputs, run the op, store the result.

The job record is the truth. A run first claims the job (a guarded
transition), so a cancelled, finished or live-elsewhere job is left alone, and
it finishes with a guarded transition, so a late run never overwrites a
cancelled job.
"""

import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from arrayq.storage import codecs, inline, keys, slicing
from arrayq.storage.digests import array_digest
from arrayq.storage.errors import (
    ArrayqError,
    BrokerUnavailable,
    Conflict,
    InvalidInput,
    JobFailure,
    NotFound,
)
from arrayq.storage.jobs import Job, JobStatus, JobStore
from arrayq.storage.results import OUTPUTS_KIND, SINGLE, OutputFacts, ResultFacts
from arrayq.storage.retry import retry_unavailable
from arrayq.storage.settings import Settings
from arrayq.storage.stores import ObjectStore
from arrayq.worker.monitor import JobCancelled, RunMonitor
from arrayq.worker.ops import Op, get_op

log = logging.getLogger(__name__)
STORAGE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
TRACEBACK_MAX_CHARS = 8000
REDIS_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    jobs: JobStore
    store: ObjectStore
    worker_name: str


class ResultTooLarge(JobFailure):
    type = "result_too_large"


class InvalidResult(JobFailure):
    type = "invalid_result"


class DependencyGone(JobFailure):
    type = "dependency_failed"


class OpFailed(Exception):
    """An exception raised by an op, with the traceback of the op's frames."""

    def __init__(self, error: Exception, traceback: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.traceback = traceback


def run_job(ctx: WorkerContext, job_id: str) -> str:
    """One run; returns how it ended: succeeded, failed, cancelled or skipped."""
    run_id = keys.new_id()
    job = _claim(ctx, job_id, run_id)
    if job is None:
        return "skipped"
    op = get_op(job.op)
    with RunMonitor(ctx.jobs, job_id, run_id, interval=_monitor_interval(ctx.settings)) as monitor:
        try:
            outputs = _compute(ctx, job, op, monitor)
            facts = _store_result(ctx, job, run_id, op, outputs)
            digests = {name: array_digest(array) for name, array in outputs.items()}
        except JobCancelled:
            _discard_run(ctx, job, run_id)
            log.info("job %s stopped: cancelled", job_id)
            return "cancelled"
        except Exception as exc:
            _discard_run(ctx, job, run_id)
            _record_failure(ctx, job_id, run_id, exc)
            return "failed"
    if not _succeed(ctx, job_id, run_id, facts, digests):
        _discard_run(ctx, job, run_id)
        log.info("job %s finished but no longer owned by this run; result not recorded", job_id)
        return "skipped"
    return "succeeded"


def _record_failure(ctx: WorkerContext, job_id: str, run_id: str, exc: Exception) -> None:
    error_type, message = describe_error(exc)
    trace = exc.traceback if isinstance(exc, OpFailed) else None
    if trace:
        log.warning("job %s failed: %s: %s\n%s", job_id, error_type, message, trace.rstrip())
    else:
        log.warning("job %s failed: %s: %s", job_id, error_type, message)
    ctx.jobs.fail(job_id, error_type=error_type, message=message, run_id=run_id, traceback=trace)


def _succeed(
    ctx: WorkerContext, job_id: str, run_id: str, facts: ResultFacts, digests: dict[str, str]
) -> bool:
    """The success transition, retried while Redis is away. Guarded by the run id,
    so a retry after a lost reply finds the job already succeeded by this run."""

    def attempt() -> bool:
        if ctx.jobs.succeed(job_id, run_id=run_id, result=facts.record(), digests=digests):
            return True
        job = ctx.jobs.get(job_id)
        return job.status == JobStatus.SUCCEEDED and job.run_id == run_id

    for delay in (*REDIS_RETRY_DELAYS, None):
        try:
            return attempt()
        except NotFound:
            return False
        except BrokerUnavailable:
            if delay is None:
                raise
            log.warning(
                "job %s: Redis unavailable, recording the success again in %g s", job_id, delay
            )
            time.sleep(delay)
    return False


def _discard_run(ctx: WorkerContext, job: Job, run_id: str) -> None:
    """Delete what this run wrote: it never becomes the job's result."""
    try:
        ctx.store.delete_prefix(keys.run_prefix(job.tenant, job.id, run_id))
    except ArrayqError as exc:
        log.warning("job %s: could not delete the objects of run %s: %s", job.id, run_id, exc)


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


def _compute(ctx: WorkerContext, job: Job, op: Op, monitor: RunMonitor) -> dict[str, np.ndarray]:
    params = op.params.model_validate(job.params)
    shapes = {name: tuple(spec["shape"]) for name, spec in job.inputs.items() if "shape" in spec}
    if op.result_nbytes is not None and len(shapes) == len(job.inputs):
        check_result_size(op.result_nbytes(params, shapes), ctx.settings.max_result_bytes)
    inputs = {name: _load_input(ctx, job, name, spec) for name, spec in job.inputs.items()}
    if any("job" in spec for spec in job.inputs.values()):
        ctx.jobs.unneed(job.id)
    with monitor.interruptible():
        returned = call_op(op, params, monitor.progress, inputs)
    return validate_outputs(op, returned, ctx.settings.max_result_bytes)


def call_op(op: Op, params: Any, progress: Any, inputs: dict[str, np.ndarray]) -> object:
    """Run the op; an exception it raises comes out as `OpFailed` carrying the
    traceback of the op's own frames (this frame and the worker's left out)."""
    try:
        return op.func(params, progress, **inputs)
    except (JobCancelled, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        trace = "".join(traceback.format_exception(type(exc), exc, tb))
        raise OpFailed(exc, _clip(trace)) from exc


def _clip(text: str, limit: int = TRACEBACK_MAX_CHARS) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _load_input(ctx: WorkerContext, job: Job, name: str, spec: dict[str, Any]) -> np.ndarray:
    if name in job.inline:
        return inline.decode(job.inline[name], spec["descr"], spec["shape"])
    if "job" in spec:
        return _load_reference(ctx, job, name, spec)

    def load() -> np.ndarray:
        with ctx.store.open(spec["key"]) as stream:
            return codecs.read_npy(stream, max_bytes=ctx.settings.max_input_bytes)

    return retry_unavailable(load, STORAGE_RETRY_DELAYS)


def _load_reference(ctx: WorkerContext, job: Job, name: str, spec: dict[str, Any]) -> np.ndarray:
    """Another job's output, straight from the store; a slice reads only the rows
    it needs. The referenced job has succeeded (the job waited for it)."""
    try:
        source = ctx.jobs.needed_record(spec["job"], job.tenant)
        facts = source.facts
        if facts is None:
            raise NotFound(spec["job"])
        out = facts.output(spec["output"])
    except NotFound:
        raise DependencyGone(f"input {name!r}: job {spec['job']} has no result any more") from None
    text = spec.get("slice")

    def load() -> np.ndarray:
        if text is None:
            with ctx.store.open(out.key) as stream:
                return codecs.read_npy(stream, max_bytes=ctx.settings.max_result_bytes)
        try:
            index = slicing.parse_slice(text, out.shape)
        except slicing.InvalidSlice as exc:
            raise InvalidInput(f"input {name!r}: {exc}") from None
        return slicing.read_slice(
            ctx.store, out.key, index, max_bytes=ctx.settings.max_result_bytes
        )

    return retry_unavailable(load, STORAGE_RETRY_DELAYS)


def check_result_size(nbytes: int, limit: int) -> None:
    if nbytes > limit:
        raise ResultTooLarge(
            f"the result would take {nbytes} bytes, over the limit of {limit} "
            "(ARRAYQ_MAX_RESULT_BYTES)"
        )


def validate_outputs(op: Op, returned: object, max_bytes: int) -> dict[str, np.ndarray]:
    """The op's return value as arrays by output name; `InvalidResult` naming the
    output for a wrong count, a missing name or something that is no array."""
    named = split_outputs(op, returned)
    arrays = {name: validate_array(op, name, value) for name, value in named.items()}
    check_result_size(sum(array.nbytes for array in arrays.values()), max_bytes)
    return arrays


def split_outputs(op: Op, returned: object) -> dict[str, object]:
    if not op.multi_output:
        return {SINGLE: returned}
    expected = list(op.outputs)
    if isinstance(returned, Mapping):
        missing = [name for name in expected if name not in returned]
        unknown = [str(name) for name in returned if name not in op.outputs]
        if missing or unknown:
            raise InvalidResult(
                f"op {op.name!r} returned outputs {list(map(str, returned))}; expected "
                f"{expected} (missing {missing}, unknown {unknown})"
            )
        return {name: returned[name] for name in expected}
    if isinstance(returned, tuple | list):
        if len(returned) != len(expected):
            raise InvalidResult(
                f"op {op.name!r} returned {len(returned)} arrays for its "
                f"{len(expected)} outputs {expected}"
            )
        return dict(zip(expected, returned, strict=True))
    raise InvalidResult(
        f"op {op.name!r} returned {type(returned).__name__}; an op with outputs "
        f"{expected} returns a dict by name or a tuple in that order"
    )


def validate_array(op: Op, name: str, value: object) -> np.ndarray:
    label = f"output {name!r} of op {op.name!r}" if op.multi_output else f"op {op.name!r}"
    if value is None or isinstance(value, str | bytes | Mapping):
        raise InvalidResult(f"{label} is {type(value).__name__}, not an array")
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise InvalidResult(f"{label} is not an array: {exc}") from exc
    if not array.flags.c_contiguous:  # ascontiguousarray would turn 0-d into 1-d
        array = np.ascontiguousarray(array)
    try:
        codecs.check_dtype(array.dtype)
    except ArrayqError as exc:
        raise InvalidResult(f"{label} is an unsupported array: {exc}") from exc
    if op.result == "image" and not codecs.is_image(array):
        raise InvalidResult(
            f"{label} must be a uint8 H x W, H x W x 3 or H x W x 4 image, "
            f"got {array.dtype} {array.shape}"
        )
    return array


def _store_result(
    ctx: WorkerContext, job: Job, run_id: str, op: Op, arrays: dict[str, np.ndarray]
) -> ResultFacts:
    """Each output as its own .npy under this run's keys (images with their PNG)."""
    outputs = {
        name: _store_output(ctx, job, run_id, op, name, array) for name, array in arrays.items()
    }
    kind = OUTPUTS_KIND if op.multi_output else op.result
    return ResultFacts(kind=kind, outputs=outputs)


def _store_output(
    ctx: WorkerContext, job: Job, run_id: str, op: Op, name: str, array: np.ndarray
) -> OutputFacts:
    npy_key = keys.output_object(job.tenant, job.id, run_id, name, "npy")
    size = codecs.npy_nbytes(array)
    retry_unavailable(
        lambda: ctx.store.write(npy_key, codecs.npy_chunks(array), size), STORAGE_RETRY_DELAYS
    )
    png_key = None
    if op.result == "image":
        png = codecs.encode_png(array)
        png_key = keys.output_object(job.tenant, job.id, run_id, name, "png")
        retry_unavailable(lambda: ctx.store.write(png_key, [png], len(png)), STORAGE_RETRY_DELAYS)
    return OutputFacts(
        name=name,
        dtype=array.dtype.name,
        shape=tuple(array.shape),
        nbytes=int(array.nbytes),
        kind=op.result,
        key=npy_key,
        size=size,
        crc32=codecs.npy_crc32(array),
        png_key=png_key,
    )


def describe_error(exc: BaseException) -> tuple[str, str]:
    """The `error` of a failed job: a type and the exception's text."""
    if isinstance(exc, OpFailed):
        exc = exc.error
    if isinstance(exc, SoftTimeLimitExceeded):
        return "timeout", "the job ran past its time limit"
    if isinstance(exc, ArrayqError):
        return exc.type, str(exc)
    message = str(exc) or type(exc).__name__
    return type(exc).__name__, message
