"""A stored `.npy` seen as a Zarr v3 array, without converting or copying it.

A C-ordered `.npy` is a header and then the raw elements. A chunk that holds
whole trailing dimensions (a run of leading rows) is therefore one contiguous
byte range of the file. When one row alone is larger than the chunk target,
the chunk holds single entries of the leading axes, a run along the next
axis and the trailing dimensions whole: still one byte range.

Pure: facts in (dtype, shape, header offset), metadata and byte ranges out.
"""

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arrayq.storage.codecs import NpyHeader
from arrayq.storage.errors import InvalidArray, NotFound

CHUNK_TARGET_BYTES = 8 << 20
METADATA_KEY = "zarr.json"
_CHUNK_KEY = re.compile(r"c(?:/[0-9]{1,19})*")  # ASCII digits only

# Zarr v3 core data types by NumPy kind and item size (the NumPy names, byte
# order aside, are the Zarr names for every dtype arrayq supports).
_ZARR_NAMES = frozenset(
    {"bool", *(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64))}
    | {"float16", "float32", "float64", "complex64", "complex128"}
)


class NoSuchChunk(NotFound):
    """A key of the view that is neither its metadata nor a chunk inside the grid."""

    type = "no_such_chunk"


class NotZarrViewable(InvalidArray):
    """A stored file that a byte-range view cannot describe (Fortran order)."""

    type = "not_zarr_viewable"


@dataclass(frozen=True)
class ChunkSpan:
    """Where one chunk's bytes are in the file: `length` bytes from `start`,
    then `padding` zero bytes up to the full chunk size."""

    start: int
    length: int
    padding: int

    @property
    def size(self) -> int:
        return self.length + self.padding


@dataclass(frozen=True)
class ZarrLayout:
    dtype: np.dtype
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    offset: int

    @classmethod
    def of(cls, header: NpyHeader, target_bytes: int = CHUNK_TARGET_BYTES) -> "ZarrLayout":
        if header.fortran_order and len(header.shape) > 1:
            raise NotZarrViewable("a Zarr view needs a C-ordered .npy file")
        chunks = chunk_shape(header.shape, header.dtype.itemsize, target_bytes)
        return cls(header.dtype, header.shape, chunks, header.offset)

    @property
    def grid(self) -> tuple[int, ...]:
        """Chunks along each axis."""
        return tuple(
            -(-size // chunk) for size, chunk in zip(self.shape, self.chunk_shape, strict=True)
        )

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunk_shape) * self.dtype.itemsize

    def metadata(self, attributes: dict | None = None) -> dict:
        """The `zarr.json` document of the view."""
        return {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(self.shape),
            "data_type": zarr_data_type(self.dtype),
            "chunk_grid": {
                "name": "regular",
                "configuration": {"chunk_shape": list(self.chunk_shape)},
            },
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "codecs": [{"name": "bytes", "configuration": {"endian": endian(self.dtype)}}],
            "fill_value": fill_value(self.dtype),
            "attributes": attributes or {},
        }

    def span(self, indices: Sequence[int]) -> ChunkSpan:
        """The byte range of the chunk at `indices`; `NoSuchChunk` outside the grid."""
        if len(indices) != len(self.shape):
            raise NoSuchChunk(f"a chunk key of this array has {len(self.shape)} indices")
        if any(not 0 <= index < count for index, count in zip(indices, self.grid, strict=True)):
            raise NoSuchChunk(f"chunk {list(indices)} is outside the grid {list(self.grid)}")
        # Every chunk axis but one is either 1 or the whole axis, so the chunk's
        # first element and its element count in the file follow directly.
        first = [index * chunk for index, chunk in zip(indices, self.chunk_shape, strict=True)]
        stored = [
            min(chunk, size - start)
            for chunk, size, start in zip(self.chunk_shape, self.shape, first, strict=True)
        ]
        itemsize = self.dtype.itemsize
        start = self.offset + _flat_index(first, self.shape) * itemsize
        length = math.prod(stored) * itemsize
        return ChunkSpan(start, length, self.chunk_nbytes - length)


def chunk_shape(shape: Sequence[int], itemsize: int, target_bytes: int) -> tuple[int, ...]:
    """Whole trailing dimensions and as many entries of the axis before them as
    fit in `target_bytes` (at least one); single entries of the axes before
    that. Every extent is at least 1, as Zarr requires, also for empty axes."""
    shape = [max(1, size) for size in shape]
    target_items = max(1, target_bytes // itemsize)
    for axis in range(len(shape)):
        trailing = math.prod(shape[axis + 1 :])
        if trailing <= target_items:
            run = min(shape[axis], max(1, target_items // trailing))
            return (*([1] * axis), run, *shape[axis + 1 :])
    return tuple(shape)  # 0-d: one chunk, the one element


def parse_key(key: str) -> tuple[int, ...] | None:
    """The chunk indices of a key (`c/1/0`, or `c` for a 0-d array); None for
    `zarr.json`; `NoSuchChunk` for anything else."""
    if key == METADATA_KEY:
        return None
    if not _CHUNK_KEY.fullmatch(key):
        raise NoSuchChunk(f"no key {key[:100]!r} in this Zarr array")
    return tuple(int(part) for part in key.split("/")[1:])


def zarr_data_type(dtype: np.dtype) -> str:
    name = dtype.newbyteorder("=").name
    if name not in _ZARR_NAMES:
        raise NotZarrViewable(f"no Zarr v3 data type for {dtype}")
    return name


def endian(dtype: np.dtype) -> str:
    """The `bytes` codec's byte order for data stored in `dtype`."""
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        return "big"
    return "little"  # also for one-byte types, whose order does not matter


def fill_value(dtype: np.dtype) -> bool | int | float | list[float]:
    """Zero in the JSON form the spec gives each data type."""
    if dtype.kind == "b":
        return False
    if dtype.kind == "c":
        return [0.0, 0.0]
    if dtype.kind == "f":
        return 0.0
    return 0


def _flat_index(position: Sequence[int], shape: Sequence[int]) -> int:
    flat = 0
    for index, size in zip(position, shape, strict=True):
        flat = flat * size + index
    return flat
