"""Accepting a job: validate everything, store the inputs, record the job, queue it.

Nothing is queued unless the op, its params and every input are valid.
"""

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errors import ApiError, validation_failed
from api.services import Services
from storage import codecs, keys, uploads
from storage.errors import ArrayqError, BrokerUnavailable, TooLarge
from storage.jobs import Job, NewJob
from worker.enqueue import enqueue
from worker.ops import Op


class ArrayInput(BaseModel):
    """An array in JSON: nested `data` lists or raw little-endian `base64` bytes."""

    model_config = ConfigDict(extra="forbid")
    dtype: str
    shape: list[int]
    data: Any = None
    base64: str | None = None


class UploadRef(BaseModel):
    """An array uploaded earlier through `POST /uploads`."""

    model_config = ConfigDict(extra="forbid")
    upload: str


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, ArrayInput | UploadRef] = Field(default_factory=dict)


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool


def submit_job(
    services: Services,
    tenant: str,
    body: dict[str, Any],
    idempotency_key: str | None = None,
) -> Submitted:
    try:
        request = JobRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_failed(exc) from None
    op = find_op(services, request.op)
    try:
        params = op.params.model_validate(request.params)
    except ValidationError as exc:
        raise validation_failed(exc, "invalid_params") from None
    check_input_names(op, request.inputs)
    job_id = keys.new_id()
    if idempotency_key is not None:
        first_id = services.jobs.claim_idempotency_key(
            tenant, idempotency_key, _digest(body), job_id
        )
        if first_id != job_id:
            return Submitted(services.jobs.get(first_id, tenant=tenant), created=False)
    arrays, input_specs = _resolve_inputs(services, tenant, job_id, request.inputs)
    _check_result_size(services, op, params, input_specs)
    _store_arrays(services, arrays)
    new = NewJob(
        id=job_id,
        tenant=tenant,
        op=op.name,
        params=params.model_dump(mode="json"),
        inputs=input_specs,
        queue=op.queue,
    )
    job = services.jobs.create(new)
    try:
        enqueue(services.celery, job.id, op, services.settings)
    except BrokerUnavailable:
        _forget(services, job)
        raise
    return Submitted(job, created=True)


def _forget(services: Services, job: Job) -> None:
    """Undo a submission that could not be queued, so no job waits forever."""
    with contextlib.suppress(ArrayqError):
        services.jobs.delete(job.id)
        services.store.delete_prefix(keys.inputs_prefix(job.tenant, job.id))


def find_op(services: Services, name: str) -> Op:
    op = services.ops.get(name)
    if op is None:
        raise ApiError(422, "unknown_op", f"unknown op {name!r}; GET /ops lists them")
    return op


def check_input_names(op: Op, inputs: dict[str, Any]) -> None:
    missing = [name for name in op.inputs if name not in inputs]
    unknown = [name for name in inputs if name not in op.inputs]
    if missing or unknown:
        raise ApiError(
            422,
            "invalid_inputs",
            f"op {op.name!r} takes inputs {list(op.inputs)}; missing {missing}, unknown {unknown}",
        )


def _resolve_inputs(
    services: Services,
    tenant: str,
    job_id: str,
    inputs: dict[str, ArrayInput | UploadRef],
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Decode inline arrays and look up uploads; returns the arrays to store (by
    object key) and each input's spec for the job record."""
    arrays: dict[str, np.ndarray] = {}
    specs: dict[str, dict[str, Any]] = {}
    max_bytes = services.settings.max_input_bytes
    for index, (name, value) in enumerate(inputs.items()):
        if isinstance(value, UploadRef):
            upload = uploads.get_upload(services.redis, value.upload, tenant=tenant)
            specs[name] = {"key": upload.key, "dtype": upload.dtype, "shape": list(upload.shape)}
            continue
        array = codecs.decode_array_json(value.model_dump(exclude_none=True), max_bytes=max_bytes)
        key = keys.input_object(tenant, job_id, index)
        arrays[key] = array
        specs[name] = {"key": key, "dtype": array.dtype.name, "shape": list(array.shape)}
    return arrays, specs


def _check_result_size(
    services: Services, op: Op, params: BaseModel, specs: dict[str, dict[str, Any]]
) -> None:
    if op.result_nbytes is None:
        return
    shapes = {name: tuple(spec["shape"]) for name, spec in specs.items()}
    nbytes = op.result_nbytes(params, shapes)
    limit = services.settings.max_result_bytes
    if nbytes > limit:
        raise TooLarge(
            f"the result would take {nbytes} bytes, over the limit of {limit} "
            "(ARRAYQ_MAX_RESULT_BYTES)"
        )


def _store_arrays(services: Services, arrays: dict[str, np.ndarray]) -> None:
    for key, array in arrays.items():
        services.store.write(key, codecs.npy_chunks(array), codecs.npy_nbytes(array))


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
