"""The job use cases behind `routes/jobs.py`: submit, list, cancel or delete.

A submission validates everything, stores the inputs, records the job and queues it;
nothing is queued unless the op, its params and every input are valid.
"""

import base64
import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError

from arrayq.api import cache
from arrayq.api.backends import Backends
from arrayq.api.errors import (
    CallbacksDisabled,
    InvalidCursor,
    InvalidInputs,
    InvalidParams,
    StateChanged,
    UnknownOpRequested,
    validation_failed,
)
from arrayq.api.inputs import resolve_inputs, store_arrays
from arrayq.api.schemas import Callback, JobRequest
from arrayq.storage import keys
from arrayq.storage.callback_address import AllowList, check_callback_url
from arrayq.storage.errors import ArrayqError, BrokerUnavailable, InvalidTtl, TooLarge
from arrayq.storage.jobs import Idempotency, Job, JobStatus, JobStore, NewJob
from arrayq.worker.enqueue import enqueue
from arrayq.worker.ops import Op

_CURSOR_BYTES = 8


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool


def submit_job(
    backends: Backends,
    tenant: str,
    body: dict[str, Any],
    idempotency_key: str | None = None,
    job_id: str | None = None,
) -> Submitted:
    """Validate, then serve from the cache or store the inputs, record and queue.
    An Idempotency-Key is claimed in the same step that records the job, so a
    refused request never holds it."""
    try:
        request = JobRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_failed(exc) from None
    op = find_op(backends, request.op)
    try:
        params = op.params.model_validate(request.params)
    except ValidationError as exc:
        raise validation_failed(exc, InvalidParams) from None
    check_input_names(op, request.inputs)
    callback = _callback(backends, request.callback)
    idem = Idempotency(tenant, idempotency_key, _digest(body)) if idempotency_key else None
    if idem is not None and (first := backends.jobs.idempotent_job(idem)) is not None:
        return Submitted(first, created=False)
    job_id = job_id or new_job_id()
    inputs = resolve_inputs(backends, tenant, job_id, request.inputs)
    _check_result_size(backends, op, params, inputs.shapes())
    params_json = params.model_dump(mode="json")
    entry = cache.entry_key(tenant, op, params, params_json, inputs.digests)
    new = NewJob(
        id=job_id,
        tenant=tenant,
        op=op.name,
        params=params_json,
        inputs=inputs.specs,
        queue=op.queue,
        idempotency=idem,
        ttl_seconds=_ttl(backends, request.ttl_seconds),
        inline=inputs.inline,
        cache_key=entry,
        callback=callback,
    )
    if entry is not None and request.cache and (hit := cache.serve_hit(backends, new)):
        return Submitted(hit.job, created=hit.created)
    return _record_and_queue(backends, op, new, inputs.arrays, inputs.waiting_for)


def _ttl(backends: Backends, requested: int | None) -> int | None:
    limit = backends.settings.result_ttl_seconds
    if requested is not None and requested > limit:
        raise InvalidTtl(f"ttl_seconds must be 1 to {limit} (ARRAYQ_RESULT_TTL_SECONDS)")
    return requested


def _callback(backends: Backends, requested: Callback | None) -> dict[str, Any] | None:
    """The callback as recorded, once webhooks are on and its URL may be reached."""
    if requested is None:
        return None
    settings = backends.settings
    if not settings.webhook_secret:
        raise CallbacksDisabled("webhooks are off: the service has no ARRAYQ_WEBHOOK_SECRET")
    check_callback_url(requested.url, AllowList.parse(settings.webhook_allow_hosts))
    return {"url": requested.url, "events": list(dict.fromkeys(requested.events))}


def new_job_id() -> str:
    return keys.new_id()


def _record_and_queue(
    backends: Backends,
    op: Op,
    new: NewJob,
    arrays: dict[str, np.ndarray],
    waiting_for: list[str] | None = None,
) -> Submitted:
    store_arrays(backends, arrays)
    try:
        created = backends.jobs.create(new)
    except BaseException:
        if arrays:
            _delete_inputs(backends, new.tenant, new.id)
        raise
    if not created.created:  # a concurrent request with the same key won
        if arrays:
            _delete_inputs(backends, new.tenant, new.id)
        return Submitted(created.job, created=False)
    referenced = _referenced(new)
    if referenced:
        backends.jobs.need(new.id, referenced)
    # A job that waits takes no fair-share room; it is queued (or backlogged)
    # by the transition that ends its last unfinished reference.
    if waiting_for and _waits(backends, created.job, waiting_for):
        return Submitted(backends.jobs.get(new.id, tenant=new.tenant), created=True)
    if created.job.backlogged:  # fair share: sent when the tenant has room
        return Submitted(created.job, created=True)
    try:
        enqueue(backends.celery, new.id, op, backends.settings)
    except BrokerUnavailable:
        _forget(backends, created.job, new.idempotency)
        raise
    return Submitted(created.job, created=True)


def _referenced(new: NewJob) -> list[str]:
    return list(dict.fromkeys(spec["job"] for spec in new.inputs.values() if "job" in spec))


def _waits(backends: Backends, job: Job, referenced: list[str]) -> bool:
    """True when the job waits for referenced jobs (it is queued once they have
    succeeded) or failed because one of them never will."""
    count, problem = backends.jobs.wait_for(job.id, referenced)
    if problem:
        failed_id, _, status = problem.partition(" ")
        backends.jobs.fail_dependents(failed_id, status, [job.id])
        return True
    return count > 0


def _forget(backends: Backends, job: Job, idem: Idempotency | None) -> None:
    """Undo a submission that could not be queued, so no job waits forever and
    its Idempotency-Key is free again."""
    with contextlib.suppress(ArrayqError):
        backends.jobs.forget(job, idem)
    _delete_inputs(backends, job.tenant, job.id)


def _delete_inputs(backends: Backends, tenant: str, job_id: str) -> None:
    with contextlib.suppress(ArrayqError):
        backends.store.delete_prefix(keys.inputs_prefix(tenant, job_id))


def find_op(backends: Backends, name: str) -> Op:
    op = backends.ops.get(name)
    if op is None:
        raise UnknownOpRequested(f"unknown op {name!r}; GET /ops lists them")
    return op


def check_input_names(op: Op, inputs: dict[str, Any]) -> None:
    missing = [name for name in op.inputs if name not in inputs]
    unknown = [name for name in inputs if name not in op.inputs]
    if missing or unknown:
        raise InvalidInputs(
            f"op {op.name!r} takes inputs {list(op.inputs)}; missing {missing}, unknown {unknown}",
        )


def _check_result_size(
    backends: Backends, op: Op, params: BaseModel, shapes: dict[str, tuple[int, ...]]
) -> None:
    if op.result_nbytes is None or len(shapes) < len(op.inputs):  # a reference still running
        return
    nbytes = op.result_nbytes(params, shapes)
    limit = backends.settings.max_result_bytes
    if nbytes > limit:
        raise TooLarge(
            f"the result would take {nbytes} bytes, over the limit of {limit} "
            "(ARRAYQ_MAX_RESULT_BYTES)"
        )


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def list_page(
    jobs: JobStore,
    tenant: str,
    *,
    status: JobStatus | None,
    op: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    before = decode_cursor(cursor) if cursor is not None else None
    page, next_seq = jobs.list_jobs(tenant, limit=limit, before_seq=before, status=status, op=op)
    return {
        "items": [job.document() for job in page],
        "next_cursor": encode_cursor(next_seq) if next_seq is not None else None,
    }


def encode_cursor(seq: int) -> str:
    """An opaque page cursor. It holds a position in the tenant's own submission
    sequence (`keys.tenant_sequence_key`), so it says nothing of other tenants."""
    return base64.urlsafe_b64encode(seq.to_bytes(_CURSOR_BYTES, "big")).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        raw = b""
    if len(raw) != _CURSOR_BYTES or encode_cursor(int.from_bytes(raw, "big")) != cursor:
        raise InvalidCursor("cursor must be a next_cursor from an earlier page")
    return int.from_bytes(raw, "big")


def cancel_or_delete(backends: Backends, job_id: str, tenant: str) -> None:
    """Cancel a queued or running job; delete a finished one with its objects."""
    job = backends.jobs.get(job_id, tenant=tenant)
    if not job.status.is_final and backends.jobs.cancel(job.id):
        return
    job = backends.jobs.get(job_id, tenant=tenant)  # it may have finished meanwhile
    if not job.status.is_final:
        raise StateChanged(f"job {job.id} changed state; try again", job=job.document())
    backends.jobs.delete(job.id)
    for prefix in keys.job_object_prefixes(job.tenant, job.id):
        backends.store.delete_prefix(prefix)
