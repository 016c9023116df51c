"""The .npz layout against what np.savez and zipfile write and read."""

import io
import os
import zipfile
import zlib

import numpy as np
import pytest

from arrayq.storage import codecs, npz


def npy_bytes(array: np.ndarray) -> bytes:
    return b"".join(bytes(chunk) for chunk in codecs.npy_chunks(array))


def build(arrays: dict[str, np.ndarray]) -> bytes:
    blobs = {name: npy_bytes(array) for name, array in arrays.items()}
    entries = [npz.Entry(name, len(blob), zlib.crc32(blob)) for name, blob in blobs.items()]
    parts = npz.layout(entries)
    content = b"".join(
        part.data if part.entry is None else blobs[part.entry.name] for part in parts
    )
    assert len(content) == npz.size(parts)
    return content


@pytest.mark.parametrize(
    "arrays",
    [
        {"eigenvalues": np.arange(3.0), "eigenvectors": np.eye(3)},
        {"counts": np.zeros(0, dtype=np.int64), "edges": np.array([0.5])},
        {"one": np.array(True)},
        {f"o{i}": np.full((i, 2), i, dtype=np.complex64) for i in range(12)},
    ],
)
def test_the_bytes_np_savez_writes(arrays):
    expected = io.BytesIO()
    np.savez(expected, **arrays)
    assert build(arrays) == expected.getvalue()


def test_np_load_reads_every_entry():
    arrays = {"a": np.arange(10, dtype=np.uint16), "b": np.ones((2, 3), dtype=np.float32)}
    with np.load(io.BytesIO(build(arrays)), allow_pickle=False) as loaded:
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded[name], array)


def test_npy_crc32_is_that_of_the_file():
    array = np.arange(1 << 16, dtype=np.float64).reshape(256, 256)
    assert codecs.npy_crc32(array) == zlib.crc32(npy_bytes(array))


def test_zip64_fields_past_2_gib(tmp_path):
    """Entries and offsets past zipfile's Zip64 limit, in a sparse file: zipfile
    reads the directory and each local header at its offset."""
    big = npz.ZIP64_LIMIT + 10
    entries = [npz.Entry("first", big, 0), npz.Entry("second", 200, zlib.crc32(bytes(200)))]
    path = tmp_path / "sparse.npz"
    with open(path, "wb") as out:
        for part in npz.layout(entries):
            if part.entry is None:
                out.write(part.data)
            else:
                out.seek(part.length, os.SEEK_CUR)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert [(info.filename, info.file_size) for info in infos] == [
            ("first.npy", big),
            ("second.npy", 200),
        ]
        assert infos[1].header_offset > npz.ZIP64_LIMIT
        with archive.open("second.npy") as member:  # checks the local header there
            assert member.read() == bytes(200)
