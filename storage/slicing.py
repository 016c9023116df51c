"""Sub-arrays of a stored `.npy` without reading all of it.

A slice is NumPy basic slicing written as text (`0:100,::2`, `5`, `:,3:7`),
parsed by hand (never evaluated). Reading it takes only the rows of the first
axis that the slice touches: by memory map on local files, by byte-range reads
on S3, using the data offset from the `.npy` header.
"""

import io
import math
import re
from collections.abc import Sequence

import numpy as np

from arrayq.storage import codecs
from arrayq.storage.errors import InvalidArray
from arrayq.storage.stores import ObjectStore

Index = tuple[int | slice, ...]
# ASCII digits, spaces and tabs only: `\d` and `\s` would also take full-width digits
# and CR/LF, which int() accepts and response headers do not.
_INT = r"-?[0-9]{1,19}"
_SP = r"[ \t]*"
_PART = re.compile(
    rf"{_SP}(?:(?P<index>{_INT})|(?P<start>{_INT})?{_SP}:{_SP}(?P<stop>{_INT})?{_SP}"
    rf"(?::{_SP}(?P<step>{_INT})?)?){_SP}"
)
_HEADER_READ = codecs.NPY_MAX_HEADER_BYTES + 16
# Rows of at least this many bytes are read one by one when the first axis has
# a step; smaller rows are read as one block and thinned in memory.
_ROW_READ_BYTES = 1 << 16


class InvalidSlice(InvalidArray):
    type = "invalid_slice"


def parse_slice(text: str, shape: Sequence[int]) -> Index:
    """The index tuple of `text` for an array of `shape`; `InvalidSlice` when it
    is malformed, has more parts than dimensions, or an index is out of range."""
    if not shape:
        raise InvalidSlice("a 0-d result cannot be sliced")
    parts = text.split(",")
    if len(parts) > len(shape):
        raise InvalidSlice(f"slice {text!r} has {len(parts)} parts for {len(shape)} dimensions")
    return tuple(_parse_part(part, size, text) for part, size in zip(parts, shape, strict=False))


def _parse_part(part: str, size: int, text: str) -> int | slice:
    match = _PART.fullmatch(part)
    if match is None:
        raise InvalidSlice(
            f"malformed slice {text.encode('ascii', 'backslashreplace').decode()!r}: "
            "use NumPy basic slicing like 0:100,::2 (ASCII digits)"
        )
    if match["index"] is not None:
        index = int(match["index"])
        if not -size <= index < size:
            raise InvalidSlice(f"index {index} is out of range for a dimension of {size}")
        return index % size
    start, stop, step = (
        int(v) if v is not None else None for v in match.group("start", "stop", "step")
    )
    if step == 0:
        raise InvalidSlice("slice step cannot be zero")
    return slice(start, stop, step)


def canonical(index: Index) -> str:
    """The index written back as slicing text, ASCII only (for an ETag)."""
    return ",".join(
        f"{item.start}:{item.stop}:{item.step}".replace("None", "")
        if isinstance(item, slice)
        else str(item)
        for item in index
    )


def sliced_shape(shape: Sequence[int], index: Index) -> tuple[int, ...]:
    """Shape of the sub-array, computed from the shape alone."""
    dims = [
        len(range(*item.indices(size))) if isinstance(item, slice) else None
        for item, size in zip(index, shape, strict=False)
    ]
    return (*(d for d in dims if d is not None), *shape[len(index) :])


def sliced_nbytes(shape: Sequence[int], itemsize: int, index: Index) -> int:
    """Bytes of the sub-array, computed from the shape alone."""
    return math.prod(sliced_shape(shape, index)) * itemsize


def read_slice(store: ObjectStore, key: str, index: Index, *, max_bytes: int) -> np.ndarray:
    path = store.local_path(key)
    if path is not None:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        return np.ascontiguousarray(mapped[index])
    header = codecs.read_npy_header(
        io.BytesIO(store.read_range(key, 0, _HEADER_READ)), max_bytes=1 << 62
    )
    if header.fortran_order:
        raise InvalidSlice("slicing needs a C-ordered .npy file")
    rows, rest = _first_axis_rows(index, header.shape[0])
    block = _read_rows(store, key, header, rows)
    return np.ascontiguousarray(block[(slice(None), *rest)] if rest else block).reshape(
        _result_shape(index, header.shape, len(rows))
    )


def _first_axis_rows(index: Index, length: int) -> tuple[range, Index]:
    first, rest = index[0], index[1:]
    rows = range(*first.indices(length)) if isinstance(first, slice) else range(first, first + 1)
    return rows, rest


def _read_rows(store: ObjectStore, key: str, header: codecs.NpyHeader, rows: range) -> np.ndarray:
    row_shape = header.shape[1:]
    row_bytes = math.prod(row_shape) * header.dtype.itemsize
    if not rows or row_bytes == 0:
        return np.empty((len(rows), *row_shape), dtype=header.dtype.newbyteorder("="))
    if abs(rows.step) == 1 or row_bytes < _ROW_READ_BYTES:
        low, high = min(rows[0], rows[-1]), max(rows[0], rows[-1]) + 1
        raw = store.read_range(key, header.offset + low * row_bytes, (high - low) * row_bytes)
        block = _as_rows(raw, header, high - low)
        return block[[row - low for row in rows]] if abs(rows.step) != 1 or rows.step < 0 else block
    pieces = [store.read_range(key, header.offset + row * row_bytes, row_bytes) for row in rows]
    return _as_rows(b"".join(pieces), header, len(rows))


def _as_rows(raw: bytes, header: codecs.NpyHeader, count: int) -> np.ndarray:
    array = np.frombuffer(raw, dtype=header.dtype).reshape(count, *header.shape[1:])
    return array.astype(header.dtype.newbyteorder("="), copy=False)


def _result_shape(index: Index, shape: Sequence[int], first_len: int) -> tuple[int, ...]:
    dims = []
    for position, (item, size) in enumerate(zip(index, shape, strict=False)):
        if isinstance(item, slice):
            dims.append(first_len if position == 0 else len(range(*item.indices(size))))
    return (*dims, *shape[len(index) :])
