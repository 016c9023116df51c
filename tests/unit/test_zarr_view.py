"""The pure Zarr view of a stored .npy: chunk shapes, metadata, byte ranges.

zarr-python reads each view from a folder holding exactly what the API would
serve (zarr.json and every chunk cut from the .npy by its span), so the
metadata and the spans are checked by the real reader, without HTTP.
"""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from arrayq.storage import codecs
from arrayq.storage.zarr_view import (
    ChunkSpan,
    NoSuchChunk,
    NotZarrViewable,
    ZarrLayout,
    chunk_shape,
    parse_key,
)

SUPPORTED = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
]  # fmt: skip


def npy_bytes(array: np.ndarray) -> bytes:
    return b"".join(bytes(chunk) for chunk in codecs.npy_chunks(array))


def layout_of(raw: bytes, target: int) -> ZarrLayout:
    header = codecs.read_npy_header(io.BytesIO(raw), max_bytes=1 << 40)
    return ZarrLayout.of(header, target)


def write_view(raw: bytes, layout: ZarrLayout, folder: Path) -> Path:
    """What the API serves, as files: zarr.json and c/i/j/... for every chunk."""
    folder.mkdir()
    (folder / "zarr.json").write_text(json.dumps(layout.metadata()))
    for indices in np.ndindex(*layout.grid):
        span = layout.span(indices)
        assert span.size == layout.chunk_nbytes
        path = folder.joinpath("c", *map(str, indices))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw[span.start : span.start + span.length] + bytes(span.padding))
    return folder


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    values = np.random.default_rng(7).standard_normal(shape) * 50
    if dtype == "bool":
        return values > 0
    if dtype.startswith("complex"):
        return (values + 1j * values[::-1]).astype(dtype)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", SUPPORTED)
def test_every_dtype_reads_back_through_zarr(tmp_path, dtype):
    array = sample(dtype, (37, 5, 3))
    raw = npy_bytes(array)
    layout = layout_of(raw, target=array.itemsize * 60)  # 4 rows a chunk
    assert layout.grid[0] > 1 and layout.shape[0] % layout.chunk_shape[0]  # a padded last chunk
    opened = zarr.open_array(write_view(raw, layout, tmp_path / "view"), mode="r")
    assert opened.dtype == array.dtype
    np.testing.assert_array_equal(opened[...], array)
    np.testing.assert_array_equal(opened[3:30:4, ::2, 1], array[3:30:4, ::2, 1])


@pytest.mark.parametrize(
    "shape", [(), (0,), (0, 4), (4, 0), (1,), (7,), (5, 4, 300), (2, 3, 5, 700)]
)
def test_shapes_including_0d_empty_and_rows_over_the_target(tmp_path, shape):
    array = sample("float64", shape)
    raw = npy_bytes(array)
    layout = layout_of(raw, target=4096)
    assert all(extent >= 1 for extent in layout.chunk_shape)
    assert layout.chunk_nbytes <= 4096 or layout.chunk_shape[-1] * 8 > 4096
    opened = zarr.open_array(write_view(raw, layout, tmp_path / "view"), mode="r")
    assert opened.shape == shape
    np.testing.assert_array_equal(opened[...], array)


def test_metadata_as_the_spec_writes_it():
    raw = npy_bytes(np.zeros((3000, 1000), dtype=np.float32))
    metadata = layout_of(raw, target=8 << 20).metadata()
    assert metadata == {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [3000, 1000],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2097, 1000]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "fill_value": 0.0,
        "attributes": {},
    }


@pytest.mark.parametrize(
    ("dtype", "fill"), [("bool", False), ("int16", 0), ("float16", 0.0), ("complex64", [0.0, 0.0])]
)
def test_fill_value_in_the_json_form_of_its_type(dtype, fill):
    layout = layout_of(npy_bytes(np.zeros(3, dtype=dtype)), target=8)
    assert layout.metadata()["fill_value"] == fill


def test_big_endian_file_keeps_its_byte_order(tmp_path):
    array = np.arange(50, dtype=">i4").reshape(10, 5)
    buffer = io.BytesIO()
    np.save(buffer, array)
    raw = buffer.getvalue()
    layout = layout_of(raw, target=64)
    assert layout.metadata()["codecs"][0]["configuration"]["endian"] == "big"
    assert layout.metadata()["data_type"] == "int32"
    np.testing.assert_array_equal(
        zarr.open_array(write_view(raw, layout, tmp_path / "v"))[:], array
    )


def test_fortran_order_is_refused():
    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(np.ones((3, 4))))
    with pytest.raises(NotZarrViewable):
        layout_of(buffer.getvalue(), target=64)


def test_span_of_the_last_chunk_is_padded():
    raw = npy_bytes(np.ones((10, 4), dtype=np.int64))  # rows of 32 bytes
    layout = layout_of(raw, target=96)  # 3 rows a chunk: 4 chunks, the last of one row
    assert layout.chunk_shape == (3, 4) and layout.grid == (4, 1)
    offset = layout.offset
    assert layout.span((0, 0)) == ChunkSpan(offset, 96, 0)
    assert layout.span((3, 0)) == ChunkSpan(offset + 9 * 32, 32, 64)


@pytest.mark.parametrize("indices", [(4, 0), (0, 1), (0,), (0, 0, 0), (-1, 0)])
def test_chunks_outside_the_grid(indices):
    layout = layout_of(npy_bytes(np.ones((10, 4))), target=96)
    with pytest.raises(NoSuchChunk):
        layout.span(indices)


def test_chunk_shape_rules():
    assert chunk_shape((1000, 1000), 8, 8 << 20) == (1000, 1000)
    assert chunk_shape((100_000, 1000), 8, 8 << 20) == (1048, 1000)
    assert chunk_shape((4, 2048, 2048), 8, 8 << 20) == (1, 512, 2048)
    assert chunk_shape((0, 3), 8, 1 << 20) == (1, 3)
    assert chunk_shape((), 8, 1 << 20) == ()


@pytest.mark.parametrize(
    ("key", "parsed"), [("zarr.json", None), ("c", ()), ("c/0", (0,)), ("c/12/0/3", (12, 0, 3))]
)
def test_keys(key, parsed):
    assert parse_key(key) == parsed


@pytest.mark.parametrize(
    "key",
    [
        ".zarray",
        ".zattrs",
        ".zgroup",
        "",
        "c/",
        "c/-1",
        "c/a",
        "c.0.0",
        "0.0",
        "zarr.json/x",
        "c/\uff11",
        "c/0\n",
    ],
)
def test_other_keys_are_not_found(key):
    with pytest.raises(NoSuchChunk):
        parse_key(key)
