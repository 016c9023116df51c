"""Arrays to ArrayJSON, .npy and PNG bytes, and back.

Pure functions: no I/O besides the streams passed in. Malformed input raises
`InvalidArray`, an unsupported dtype `UnsupportedDtype` (naming it), an array
over a byte limit `TooLarge`.
"""

import array
import ast
import base64
import io
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import BinaryIO

import numpy as np
import orjson

try:  # SIMD base64: about 20x (encode) and 40x (decode) the stdlib at 8 MB
    import pybase64 as _simd_base64
except ImportError:  # pragma: no cover - a base dependency; kept optional on purpose
    _simd_base64 = None

from arrayq.storage.errors import InvalidArray, TooLarge, UnsupportedDtype

SUPPORTED_DTYPES: frozenset[str] = frozenset(
    {
        "bool",
        *(f"int{bits}" for bits in (8, 16, 32, 64)),
        *(f"uint{bits}" for bits in (8, 16, 32, 64)),
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    }
)
# On 800x600 renders (fractal, colormapped field) level 1 is within ~10% of level 6's
# size at a quarter of its CPU; we serve many images, so CPU time wins.
PNG_COMPRESS_LEVEL = 1

MAX_NDIM = 32
NPY_MAX_HEADER_BYTES = 64 * 1024

_SPECIAL_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_NPY_MAGIC = b"\x93NUMPY"
_NPY_LENGTH_FORMATS = {(1, 0): "<H", (2, 0): "<I", (3, 0): "<I"}
_NPY_KEYS = {"descr", "fortran_order", "shape"}
_DOC_KEYS = {"dtype", "shape", "data", "base64"}
# array.array type codes that hold exactly each integer dtype, so that its range
# checks are ours.
_INT_TYPECODES = {np.dtype(code): code for code in "bBhHiIqQ"}


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# dtypes


def parse_dtype(name: object) -> np.dtype:
    """The dtype of a canonical name such as "float64"; nothing else is accepted."""
    if not isinstance(name, str) or name not in SUPPORTED_DTYPES:
        raise UnsupportedDtype(f"unsupported dtype {_short(name)}; supported: {_supported_list()}")
    return np.dtype(name)


def check_dtype(dtype: np.dtype) -> np.dtype:
    """The native-byte-order form of `dtype`, or `UnsupportedDtype`."""
    dtype = np.dtype(dtype)
    if dtype.fields is not None or dtype.subdtype is not None or dtype.name not in SUPPORTED_DTYPES:
        raise UnsupportedDtype(f"unsupported dtype {str(dtype)!r}; supported: {_supported_list()}")
    return dtype.newbyteorder("=")


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_DTYPES))


def _c_native(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    return arr.astype(check_dtype(arr.dtype), order="C", copy=False)


def _checked_nbytes(shape: tuple[int, ...], dtype: np.dtype, max_bytes: int) -> int:
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise TooLarge(
            f"array of shape {shape} and dtype {dtype.name} is {nbytes} bytes, over {max_bytes}"
        )
    if math.prod(dim for dim in shape if dim) * dtype.itemsize >= 2**63:
        raise InvalidArray(f"shape {shape} is too large for any array")
    return nbytes


def _check_shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, list | tuple) or len(shape) > MAX_NDIM:
        raise InvalidArray(f"shape must be a list of at most {MAX_NDIM} non-negative integers")
    if not all(type(dim) is int and dim >= 0 for dim in shape):
        raise InvalidArray(f"shape must hold non-negative integers, got {_short(shape)}")
    return tuple(shape)


# ArrayJSON: encode


def encode_array_json(arr: np.ndarray) -> bytes:
    """The ArrayJSON document of `arr` in the nested-list "data" form."""
    return orjson.dumps(array_json_document(arr), option=orjson.OPT_SERIALIZE_NUMPY)


def encode_array_json_base64(arr: np.ndarray) -> bytes:
    """The ArrayJSON document of `arr` in the "base64" form (bit-exact, also for NaN payloads).

    Built as bytes around the encoded data: dtype names and shapes need no escaping,
    and the base64 text is never decoded to a str or scanned again by orjson."""
    arr = _c_native(arr)
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False).reshape(-1).view(np.uint8)
    head = orjson.dumps({"dtype": arr.dtype.name, "shape": list(arr.shape)})
    return b"".join((head[:-1], b',"base64":"', _b64encode(little), b'"}'))


def _b64encode(raw: np.ndarray) -> bytes:
    if _simd_base64 is not None:
        return _simd_base64.b64encode(raw)
    return base64.b64encode(raw)


def _b64decode(text: str) -> bytearray:
    """Strict (validate=True) decode into a writable buffer; ValueError when invalid."""
    if _simd_base64 is not None:
        return _simd_base64.b64decode_as_bytearray(text, validate=True)
    return bytearray(base64.b64decode(text, validate=True))


def array_json_document(arr: np.ndarray) -> dict:
    """{"dtype", "shape", "data"}, where data is what `orjson.dumps` with
    `OPT_SERIALIZE_NUMPY` writes as the nested lists (an array, a scalar or lists)."""
    arr = _c_native(arr)
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": _json_data(arr)}


def _json_data(arr: np.ndarray) -> object:
    if arr.dtype.kind == "c":
        arr = arr.reshape(-1).view(np.finfo(arr.dtype).dtype).reshape(*arr.shape, 2)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return _with_special_text(arr)
    return arr[()] if arr.ndim == 0 else arr


def _with_special_text(arr: np.ndarray) -> object:
    """Nested lists of numpy scalars, where NaN and infinities are their ArrayJSON strings
    (orjson would write null)."""
    values = arr.reshape(-1)
    items = list(values)
    for index in np.flatnonzero(~np.isfinite(values)).tolist():
        value = values[index]
        items[index] = "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    nested = np.empty(len(items), dtype=object)
    nested[:] = items
    return nested.reshape(arr.shape).tolist()


# ArrayJSON: decode


def decode_array_json(doc: object, *, max_bytes: int) -> np.ndarray:
    """The array of a parsed ArrayJSON document, validated strictly; C-contiguous, native order."""
    if not isinstance(doc, dict):
        raise InvalidArray("an array must be a JSON object with dtype, shape and data or base64")
    unknown = set(doc) - _DOC_KEYS
    if unknown:
        raise InvalidArray(f"unknown keys in array: {_short(sorted(map(str, unknown)))}")
    if "dtype" not in doc or "shape" not in doc:
        raise InvalidArray("an array needs dtype and shape")
    dtype = parse_dtype(doc["dtype"])
    shape = _check_shape(doc["shape"])
    nbytes = _checked_nbytes(shape, dtype, max_bytes)
    if ("data" in doc) == ("base64" in doc):
        raise InvalidArray("an array needs exactly one of data and base64")
    if "base64" in doc:
        return _from_base64(doc["base64"], dtype, shape, nbytes)
    return _from_data(doc["data"], dtype, shape)


def _from_base64(text: object, dtype: np.dtype, shape: tuple[int, ...], nbytes: int) -> np.ndarray:
    if not isinstance(text, str):
        raise InvalidArray("base64 must be a string")
    if len(text) != -(-nbytes // 3) * 4:
        raise InvalidArray(f"base64 length does not match {nbytes} bytes of shape {shape}")
    try:
        raw = _b64decode(text)
    except ValueError as exc:
        raise InvalidArray(f"invalid base64: {exc}") from None
    if len(raw) != nbytes:
        raise InvalidArray(f"base64 holds {len(raw)} bytes, shape {shape} needs {nbytes}")
    if dtype.kind == "b" and raw.translate(None, b"\x00\x01"):
        raise InvalidArray("bool bytes must be 0 or 1")
    little = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
    return little.astype(dtype, copy=False)


def _from_data(data: object, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    dims = (*shape, 2) if dtype.kind == "c" else shape
    if 0 in dims:
        dims = dims[: dims.index(0) + 1]
    flat = _flatten(data, dims)
    if dtype.kind == "b":
        values = _bools(flat)
    elif dtype.kind in "iu":
        values = _ints(flat, dtype)
    else:
        values = _floats(flat, np.finfo(dtype).dtype)
    return values.view(dtype).reshape(shape)


def _flatten(data: object, dims: tuple[int, ...]) -> list:
    """The leaves of nested lists that must have exactly the lengths `dims`."""
    if not dims:
        return [data]
    if type(data) is not list or len(data) != dims[0]:
        raise InvalidArray(
            f"data does not have the declared shape: expected nested lists of {dims}"
        )
    level = data
    for length in dims[1:]:
        if set(map(type, level)) != {list} or set(map(len, level)) != {length}:
            raise InvalidArray(f"data is ragged or does not have the declared shape {dims}")
        level = list(chain.from_iterable(level))
    return level


def _bools(flat: list) -> np.ndarray:
    if not set(map(type, flat)) <= {bool}:
        raise InvalidArray(f"bool arrays hold only true and false; {_first_unlike(flat, bool)}")
    return np.array(flat, dtype=bool)


def _ints(flat: list, dtype: np.dtype) -> np.ndarray:
    try:
        values = np.frombuffer(array.array(_INT_TYPECODES[dtype], flat), dtype=dtype)
    except TypeError:
        raise InvalidArray(
            f"{dtype.name} arrays hold only integers; {_first_unlike(flat, int)}"
        ) from None
    except OverflowError:
        raise InvalidArray(f"integer out of range for {dtype.name}") from None
    _refuse_bools(flat, values, dtype)
    return values


def _floats(flat: list, dtype: np.dtype) -> np.ndarray:
    """Numbers, or the strings "NaN", "Infinity", "-Infinity", as `dtype`."""
    try:
        try:
            values = array.array("d", flat)
        except TypeError:
            values = array.array("d", map(_SPECIAL_TEXT.get, flat, flat))
    except TypeError:
        raise InvalidArray(
            f"float arrays hold only numbers, {_specials()}; {_first_bad_float(flat)}"
        ) from None
    except OverflowError:
        raise InvalidArray(f"number out of range for {dtype.name}") from None
    doubles = np.frombuffer(values, dtype=np.float64)
    _refuse_bools(flat, doubles, dtype)
    return _narrow(doubles, dtype)


def _specials() -> str:
    return ", ".join(f'"{text}"' for text in _SPECIAL_TEXT)


def _refuse_bools(flat: list, values: np.ndarray, dtype: np.dtype) -> None:
    """array.array takes true/false as 1/0; only elements equal to 0 or 1 can be bools."""
    suspects = np.flatnonzero((values == 0) | (values == 1))
    if not suspects.size:
        return
    few = suspects.size < len(flat) // 4
    items = map(flat.__getitem__, suspects.tolist()) if few else flat
    if bool in set(map(type, items)):
        raise InvalidArray(f"true/false in an array of dtype {dtype.name}")


def _first_unlike(flat: list, kind: type) -> str:
    return f"got {_short(next((item for item in flat if type(item) is not kind), None))}"


def _first_bad_float(flat: list) -> str:
    bad = (item for item in flat if type(item) not in (int, float) and not _is_special(item))
    return f"got {_short(next(bad, None))}"


def _is_special(item: object) -> bool:
    return type(item) is str and item in _SPECIAL_TEXT


def _narrow(doubles: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float64:
        return doubles
    with np.errstate(over="ignore"):
        values = doubles.astype(dtype)
    if (np.isinf(values) & np.isfinite(doubles)).any():
        raise InvalidArray(f"number out of range for {dtype.name}")
    if dtype == np.float32:
        _undo_double_rounding(doubles, values)
    return values


def _undo_double_rounding(doubles: np.ndarray, singles: np.ndarray) -> None:
    """Decimal -> float64 -> float32 can round twice. When the float64 lands exactly
    halfway between two float32, the ties-to-even cast may pick the wrong one, e.g.
    "7.038531e-26" (the shortest text of a float32 that orjson writes). The short
    text is then repr() of the float64, so comparing the two exactly tells the side."""
    back = singles.astype(np.float64)
    toward = np.where(back < doubles, np.float32(np.inf), np.float32(-np.inf))
    with np.errstate(over="ignore"):
        other = np.nextafter(singles, toward)
    ties = np.flatnonzero((back != doubles) & (doubles * 2 == back + other.astype(np.float64)))
    for index in ties.tolist():
        exact = float(doubles[index])
        text = Decimal(repr(exact))
        if text != Decimal(exact):
            pick = max if text > Decimal(exact) else min
            singles[index] = pick(singles[index], other[index])


# .npy


@dataclass(frozen=True)
class NpyHeader:
    """A validated .npy header. `dtype` is as stored (possibly big-endian); `offset` is
    where the data starts and `nbytes` its length."""

    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int
    nbytes: int


def npy_header(arr: np.ndarray) -> bytes:
    """The .npy magic and header of `arr` written in C order and native byte order."""
    dtype = check_dtype(arr.dtype)
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(arr.shape)!r}, }}"
    return _npy_wrap(text.encode("latin1"))


def _npy_wrap(raw: bytes) -> bytes:
    """Magic, version, length and the header padded with spaces to a multiple of 64
    bytes; version 2.0 only when the length does not fit in 16 bits."""
    for version in ((1, 0), (2, 0)):
        length_format = _NPY_LENGTH_FORMATS[version]
        size = struct.calcsize(length_format)
        padding = -(len(_NPY_MAGIC) + 2 + size + len(raw) + 1) % 64
        length = len(raw) + padding + 1
        if length < 1 << (8 * size):
            prefix = _NPY_MAGIC + bytes(version) + struct.pack(length_format, length)
            return prefix + raw + b" " * padding + b"\n"
    raise InvalidArray(".npy header too long")


def npy_nbytes(arr: np.ndarray) -> int:
    return len(npy_header(arr)) + arr.nbytes


def npy_chunks(arr: np.ndarray, chunk_bytes: int = 8 << 20) -> Iterator[bytes | memoryview]:
    """The .npy file of `arr`: the header, then views of its C-contiguous buffer."""
    arr = _c_native(arr)
    yield npy_header(arr)
    buffer = memoryview(arr.reshape(-1).view(np.uint8))
    for start in range(0, len(buffer), chunk_bytes):
        yield buffer[start : start + chunk_bytes]


def npy_crc32(arr: np.ndarray) -> int:
    """CRC-32 of the .npy file of `arr` (as a zip entry needs), without a copy."""
    crc = 0
    for chunk in npy_chunks(arr):
        crc = zlib.crc32(chunk, crc)
    return crc


def read_npy_header(stream: BinaryIO, *, max_bytes: int) -> NpyHeader:
    """Read and validate the magic and header only; the data is left in the stream."""
    magic = _read_exact(stream, len(_NPY_MAGIC) + 2)
    version = (magic[-2], magic[-1])
    if magic[:-2] != _NPY_MAGIC or version not in _NPY_LENGTH_FORMATS:
        raise InvalidArray("not a .npy file (bad magic or unknown version)")
    length_format = _NPY_LENGTH_FORMATS[version]
    (length,) = struct.unpack(length_format, _read_exact(stream, struct.calcsize(length_format)))
    if length > NPY_MAX_HEADER_BYTES:
        raise InvalidArray(f".npy header of {length} bytes is over {NPY_MAX_HEADER_BYTES}")
    encoding = "utf8" if version == (3, 0) else "latin1"
    fields = _npy_fields(_read_exact(stream, length), encoding)
    dtype = _npy_dtype(fields["descr"])
    shape = _check_shape(fields["shape"])
    if type(fields["fortran_order"]) is not bool:
        raise InvalidArray(".npy fortran_order must be True or False")
    nbytes = _checked_nbytes(shape, dtype, max_bytes)
    offset = len(magic) + struct.calcsize(length_format) + length
    return NpyHeader(dtype, shape, fields["fortran_order"], offset, nbytes)


def _npy_fields(raw: bytes, encoding: str) -> dict:
    try:
        fields = ast.literal_eval(raw.decode(encoding))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise InvalidArray("unreadable .npy header") from None
    if not isinstance(fields, dict) or set(fields) != _NPY_KEYS:
        raise InvalidArray(f".npy header must have exactly the keys {sorted(_NPY_KEYS)}")
    return fields


def _npy_dtype(descr: object) -> np.dtype:
    if not isinstance(descr, str):
        raise UnsupportedDtype(
            f"unsupported dtype {_short(descr)}: structured arrays are not supported"
        )
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise UnsupportedDtype(f"unsupported dtype {_short(descr)}") from None
    check_dtype(dtype)
    return dtype


def read_npy(stream: BinaryIO, *, max_bytes: int) -> np.ndarray:
    """The array of a .npy stream, read straight into its final buffer when it is
    C order and native; Fortran order and big-endian data are converted."""
    header = read_npy_header(stream, max_bytes=max_bytes)
    stored = header.shape[::-1] if header.fortran_order else header.shape
    arr = np.empty(stored, dtype=header.dtype)
    _read_into(stream, memoryview(arr.reshape(-1).view(np.uint8)))
    if not header.dtype.isnative:
        arr = arr.byteswap(inplace=True).view(header.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr.T) if header.fortran_order else arr


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    buffer = bytearray(size)
    _read_into(stream, memoryview(buffer))
    return bytes(buffer)


def _read_into(stream: BinaryIO, target: memoryview) -> None:
    position = 0
    while position < len(target):
        if hasattr(stream, "readinto"):
            count = stream.readinto(target[position:])
        else:
            chunk = stream.read(len(target) - position)
            count = len(chunk)
            target[position : position + count] = chunk
        if not count:
            raise InvalidArray(f"truncated .npy: {len(target) - position} bytes missing")
        position += count


# PNG


def is_image(array: np.ndarray) -> bool:
    """A uint8 HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA) array."""
    return is_image_shape(array.dtype.name, array.shape)


def is_image_shape(dtype: str, shape: tuple[int, ...]) -> bool:
    gray = len(shape) == 2
    color = len(shape) == 3 and shape[2] in (3, 4)
    return dtype == "uint8" and (gray or color)


def encode_png(image: np.ndarray, *, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """PNG bytes of a uint8 image: HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA)."""
    image = np.asarray(image)
    if not is_image(image) or 0 in image.shape:
        raise InvalidArray(
            f"an image is a uint8 HxW, HxWx3 or HxWx4 array, not {image.dtype} {image.shape}"
        )
    from PIL import Image  # server side only: the client never encodes PNG

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(
        buffer, format="PNG", compress_level=compress_level
    )
    return buffer.getvalue()
