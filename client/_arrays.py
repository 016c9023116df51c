"""NumPy arrays to request bodies, and answers back to arrays, with `storage.codecs`."""

import contextlib
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from arrayq.client._errors import ValidationError
from arrayq.storage import codecs
from arrayq.storage.errors import ArrayqError as CodecError

UPLOAD_OVER_BYTES = 8 << 20
# Downloads larger than this are spooled to a temporary file, not memory.
SPOOL_MEMORY_BYTES = 32 << 20


@contextlib.contextmanager
def codec_errors() -> Iterator[None]:
    """Refusals of `storage.codecs` (dtype, shape, size) as the client's `ValidationError`."""
    try:
        yield
    except CodecError as exc:
        raise ValidationError(str(exc), type=exc.type) from exc


def as_array(value: Any) -> np.ndarray:
    """`value` as an array of a dtype the service takes, or `ValidationError`."""
    array = np.asarray(value)
    with codec_errors():
        codecs.check_dtype(array.dtype)
    return array


def inline_input(array: np.ndarray) -> orjson.Fragment:
    """The ArrayJSON of `array` in the bit-exact base64 form, ready to embed in a body."""
    with codec_errors():
        return orjson.Fragment(codecs.encode_array_json_base64(array))


def npy_upload(array: np.ndarray) -> tuple[Iterator[bytes | memoryview], int]:
    """The .npy chunks of `array` and their total length."""
    with codec_errors():
        return codecs.npy_chunks(array), codecs.npy_nbytes(array)


def from_json(content: bytes, *, max_bytes: int) -> np.ndarray:
    with codec_errors():
        return codecs.decode_array_json(orjson.loads(content), max_bytes=max_bytes)


def spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)


def from_npy_file(file: IO[bytes], *, max_bytes: int) -> np.ndarray:
    """The array of a .npy file object, read from its start (never unpickled)."""
    file.seek(0)
    with codec_errors():
        return codecs.read_npy(file, max_bytes=max_bytes)


def load_npy(path: Path) -> np.ndarray:
    """The array of a .npy file on disk."""
    with path.open("rb") as file:
        return from_npy_file(file, max_bytes=path.stat().st_size)


def outputs_from_json(content: bytes, info: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of `{"outputs": {name: ArrayJSON}}`, each bounded by its own size."""
    documents = orjson.loads(content).get("outputs", {})
    with codec_errors():
        return {
            name: codecs.decode_array_json(documents[name], max_bytes=meta["nbytes"])
            for name, meta in info["outputs"].items()
        }


def outputs_from_npz_file(file: IO[bytes], info: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed .npz (what `np.savez` writes), read member by
    member with the .npy reader (never unpickled), each bounded by its own size."""
    file.seek(0)
    arrays = {}
    with zipfile.ZipFile(file) as archive, codec_errors():
        for name, meta in info["outputs"].items():
            with archive.open(f"{name}.npy") as member:
                arrays[name] = codecs.read_npy(member, max_bytes=meta["nbytes"])
    return arrays
