"""Small input arrays that travel in the job record instead of the object store,
so a small job touches the store only for its result."""

import base64

import numpy as np


def encode(array: np.ndarray) -> str:
    """The raw C-order bytes as base64 (the record's spec keeps dtype and shape)."""
    return base64.b64encode(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).decode()


def decode(text: str, descr: str, shape: list[int]) -> np.ndarray:
    """A writable array, as ops get from the store."""
    raw = bytearray(base64.b64decode(text, validate=True))
    return np.frombuffer(raw, dtype=np.dtype(descr)).reshape(shape)
