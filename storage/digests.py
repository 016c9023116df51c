"""Content digests of arrays, and the result cache key built from them.

An array's digest covers its dtype (with byte order), shape, memory order and
bytes, so one digest means one array whether it came inline, as an upload
(hashed while it streams in) or as another job's result (hashed by the worker
that wrote it). The cache key of a job is the digest of its op, op version,
validated params and the digests of its inputs.
"""

import hashlib
from typing import Any

import numpy as np
import orjson

_VERSION = b"arrayq-array-v1"


class ArrayHasher:
    """Incremental digest of one array whose data bytes arrive in pieces."""

    def __init__(self, descr: str, shape: tuple[int, ...], fortran_order: bool = False) -> None:
        self._hash = hashlib.sha256(_VERSION)
        order = "F" if fortran_order and len(shape) > 1 else "C"
        self._hash.update(orjson.dumps([descr, list(shape), order]))

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def array_digest(array: np.ndarray) -> str:
    hasher = ArrayHasher(array.dtype.str, tuple(array.shape))
    hasher.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return hasher.hexdigest()


def sliced_digest(digest: str, canonical_slice: str) -> str:
    """The digest of a slice of the array with `digest`: a function of both."""
    return hashlib.sha256(f"slice:{digest}:{canonical_slice}".encode()).hexdigest()


def cache_key(op: str, version: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """The digest naming one computation: op, version, params, input digests by name."""
    text = orjson.dumps(
        {"op": op, "version": version, "params": params, "inputs": inputs},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(b"arrayq-cache-v1" + text).hexdigest()
