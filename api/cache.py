"""The result cache at submission: find the entry of a computation, and serve a
hit as a new job that is final at once, with its own copy of the result."""

import contextlib
import dataclasses
from typing import Any

from pydantic import BaseModel

from arrayq.api.backends import Backends
from arrayq.storage import digests, keys
from arrayq.storage.errors import ArrayqError, NotFound
from arrayq.storage.jobs import Created, Job, NewJob
from arrayq.worker.ops import Op


def entry_key(
    tenant: str,
    op: Op,
    params: BaseModel,
    params_json: dict[str, Any],
    input_digests: dict[str, str] | None,
) -> str | None:
    """The Redis key of this computation's cache entry, or None when the job
    is not cacheable (the op says so, or an input's content is not known)."""
    if input_digests is None or not op.cacheable(params):
        return None
    digest = digests.cache_key(op.name, op.version, params_json, input_digests)
    return keys.cache_key(tenant, digest)


def serve_hit(backends: Backends, new: NewJob) -> Created | None:
    """The new job created final from the cached result, or None on a miss."""
    assert new.cache_key is not None
    source = backends.jobs.cache_source(new.cache_key, new.tenant)
    if source is None:
        return None
    try:
        result, copied = _copy_result(backends, source, new.id)
    except NotFound:  # the source's result is gone: the entry is stale
        backends.jobs.drop_cache_entry(new.cache_key, source.id)
        return None
    try:
        created = backends.jobs.create_cached(new, source, result=result)
    except BaseException:
        _delete(backends, copied)
        raise
    if not created.created:  # a concurrent request with the same Idempotency-Key won
        _delete(backends, copied)
    return created


def _copy_result(backends: Backends, source: Job, job_id: str) -> tuple[dict, list[str]]:
    """Copies of the source's result objects under the new job's own keys, and
    the result record that points at them."""
    facts = source.facts
    assert facts is not None
    copied: list[str] = []
    outputs = {}
    try:
        for name, out in facts.outputs.items():
            key = keys.output_object(source.tenant, job_id, job_id, name, "npy")
            backends.store.copy(out.key, key)
            copied.append(key)
            png_key = None
            if out.png_key:
                png_key = keys.output_object(source.tenant, job_id, job_id, name, "png")
                backends.store.copy(out.png_key, png_key)
                copied.append(png_key)
            outputs[name] = dataclasses.replace(out, key=key, png_key=png_key)
    except BaseException:
        _delete(backends, copied)
        raise
    return dataclasses.replace(facts, outputs=outputs).record(), copied


def _delete(backends: Backends, object_keys: list[str]) -> None:
    for key in object_keys:
        with contextlib.suppress(ArrayqError):
            backends.store.delete(key)
