"""A job request's inputs as the record keeps them: decoded, checked, digested,
and either small enough to travel in the record or stored as objects."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from arrayq.api.backends import Backends
from arrayq.api.schemas import ArrayInput, JobRef, UploadRef
from arrayq.storage import codecs, inline, keys, slicing, uploads
from arrayq.storage.digests import array_digest
from arrayq.storage.errors import InvalidInput, NotFound
from arrayq.storage.jobs import Job, JobStatus
from arrayq.storage.results import SINGLE


@dataclass
class Inputs:
    """`specs` go in the record; `inline` (base64 by name) too, until the job is
    final; `arrays` are written to the store (by object key) only if the job
    runs; `digests` is the content digest of each input, or None when one is
    not known (an upload from before digests), which keeps the job out of the
    cache."""

    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    inline: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    digests: dict[str, str] | None = field(default_factory=dict)
    # Referenced jobs that have not succeeded yet: the job waits for them.
    waiting_for: list[str] = field(default_factory=list)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shapes known now (not those of unfinished references)."""
        return {name: tuple(spec["shape"]) for name, spec in self.specs.items() if "shape" in spec}


def resolve_inputs(
    backends: Backends, tenant: str, job_id: str, given: dict[str, ArrayInput | UploadRef]
) -> Inputs:
    inputs = Inputs()
    for index, (name, value) in enumerate(given.items()):
        if isinstance(value, UploadRef):
            _add_upload(backends, tenant, inputs, name, value)
        elif isinstance(value, JobRef):
            _add_reference(backends, tenant, inputs, name, value)
        else:
            _add_array(backends, tenant, job_id, inputs, name, index, value)
    return inputs


def _add_upload(backends: Backends, tenant: str, inputs: Inputs, name: str, ref: UploadRef) -> None:
    upload = uploads.get_upload(backends.redis, ref.upload, tenant=tenant)
    inputs.specs[name] = {"key": upload.key, "dtype": upload.dtype, "shape": list(upload.shape)}
    _add_digest(inputs, name, upload.digest)


def _add_array(
    backends: Backends,
    tenant: str,
    job_id: str,
    inputs: Inputs,
    name: str,
    index: int,
    value: ArrayInput,
) -> None:
    settings = backends.settings
    document = value.model_dump(exclude_none=True)
    array = codecs.decode_array_json(document, max_bytes=settings.max_input_bytes)
    spec: dict[str, Any] = {"dtype": array.dtype.name, "shape": list(array.shape)}
    if array.nbytes <= settings.inline_input_max_bytes:
        spec["descr"] = array.dtype.str
        inputs.inline[name] = inline.encode(array)
    else:
        spec["key"] = keys.input_object(tenant, job_id, index)
        inputs.arrays[spec["key"]] = array
    inputs.specs[name] = spec
    _add_digest(inputs, name, array_digest(array))


def _add_reference(backends: Backends, tenant: str, inputs: Inputs, name: str, ref: JobRef) -> None:
    """Checked now: the same tenant's job (a foreign id reads as unknown), an
    output it has, a slice that parses. Read by the worker when the job runs."""
    job = _referenced_job(backends, tenant, name, ref.job)
    output = _referenced_output(backends, job, name, ref.output)
    spec: dict[str, object] = {"job": job.id, "output": output}
    if ref.slice is not None:
        spec["slice"] = ref.slice
    facts = job.facts
    if job.status == JobStatus.SUCCEEDED and facts is not None:
        out = facts.output(output)
        shape = out.shape
        if ref.slice is not None:
            shape = slicing.sliced_shape(out.shape, _parse(name, ref.slice, out.shape))
        spec.update(dtype=out.dtype, shape=list(shape))
        digest = job.digests.get(output) if ref.slice is None else None
        _add_digest(inputs, name, digest)
    else:
        if ref.slice is not None:  # the syntax now; the bounds once the shape is known
            _parse(name, ref.slice, [1 << 62] * (ref.slice.count(",") + 1))
        if job.id not in inputs.waiting_for:
            inputs.waiting_for.append(job.id)
        inputs.digests = None
    inputs.specs[name] = spec


def _referenced_job(backends: Backends, tenant: str, name: str, job_id: str) -> Job:
    try:
        job = backends.jobs.get(job_id, tenant=tenant)
    except NotFound:  # unknown, expired or another tenant's: all read alike
        raise InvalidInput(f"input {name!r}: no job {job_id!r}") from None
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise InvalidInput(f"input {name!r}: job {job.id} is {job.status.value}; it has no result")
    return job


def _referenced_output(backends: Backends, job: Job, name: str, output: str | None) -> str:
    facts = job.facts
    if facts is not None:
        names = list(facts.outputs)
    else:
        op = backends.ops.get(job.op)
        names = list(op.outputs) if op is not None else [SINGLE]
    if output is None:
        if len(names) > 1:
            raise InvalidInput(
                f'input {name!r}: job {job.id} has several outputs {names}; name one as "output"'
            )
        return names[0]
    if output not in names:
        raise InvalidInput(f"input {name!r}: job {job.id} has no output {output!r}; it has {names}")
    return output


def _parse(name: str, text: str, shape: object) -> slicing.Index:
    try:
        return slicing.parse_slice(text, shape)  # type: ignore[arg-type]
    except slicing.InvalidSlice as exc:
        raise InvalidInput(f"input {name!r}: {exc}") from None


def _add_digest(inputs: Inputs, name: str, digest: str | None) -> None:
    if inputs.digests is not None and digest is not None:
        inputs.digests[name] = digest
    else:
        inputs.digests = None


def store_arrays(backends: Backends, arrays: dict[str, np.ndarray]) -> None:
    for key, array in arrays.items():
        backends.store.write(key, codecs.npy_chunks(array), codecs.npy_nbytes(array))
