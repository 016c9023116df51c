"""A job request's inputs as the record keeps them: decoded, checked, digested,
and either small enough to travel in the record or stored as objects."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from arrayq.api.backends import Backends
from arrayq.api.schemas import ArrayInput, UploadRef
from arrayq.storage import codecs, inline, keys, uploads
from arrayq.storage.digests import array_digest


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

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(spec["shape"]) for name, spec in self.specs.items()}


def resolve_inputs(
    backends: Backends, tenant: str, job_id: str, given: dict[str, ArrayInput | UploadRef]
) -> Inputs:
    inputs = Inputs()
    for index, (name, value) in enumerate(given.items()):
        if isinstance(value, UploadRef):
            _add_upload(backends, tenant, inputs, name, value)
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


def _add_digest(inputs: Inputs, name: str, digest: str | None) -> None:
    if inputs.digests is not None and digest is not None:
        inputs.digests[name] = digest
    else:
        inputs.digests = None


def store_arrays(backends: Backends, arrays: dict[str, np.ndarray]) -> None:
    for key, array in arrays.items():
        backends.store.write(key, codecs.npy_chunks(array), codecs.npy_nbytes(array))
