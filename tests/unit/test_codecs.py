import base64
import io
import struct

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from arrayq.storage import codecs
from arrayq.storage.errors import InvalidArray, TooLarge, UnsupportedDtype

MAX = 1 << 30
DTYPES = sorted(codecs.SUPPORTED_DTYPES)
FLOAT_KINDS = "fc"

any_array = st.sampled_from(DTYPES).flatmap(
    lambda name: hnp.arrays(
        np.dtype(name), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    )
)
# Rare, fast settings: the file must run in about two seconds.
few = settings(max_examples=80, deadline=None)


def via_json(doc_bytes: bytes) -> np.ndarray:
    return codecs.decode_array_json(orjson.loads(doc_bytes), max_bytes=MAX)


def float_parts(arr: np.ndarray) -> np.ndarray:
    """Complex arrays as their (re, im) floats, so each part is compared alone."""
    return arr.reshape(-1).view(np.finfo(arr.dtype).dtype) if arr.dtype.kind == "c" else arr


def assert_same(original: np.ndarray, decoded: np.ndarray) -> None:
    """Equal dtype and shape; bit-equal except for NaNs, which must stay NaN."""
    assert decoded.dtype == original.dtype
    assert decoded.shape == original.shape
    assert decoded.flags.c_contiguous and decoded.dtype.isnative
    assert np.array_equal(original, decoded, equal_nan=original.dtype.kind in FLOAT_KINDS)
    if original.dtype.kind in FLOAT_KINDS:
        original, decoded = float_parts(original).ravel(), float_parts(decoded).ravel()
        nan = np.isnan(original)
        assert np.array_equal(nan, np.isnan(decoded))
        original, decoded = original[~nan], decoded[~nan]
    assert original.tobytes() == decoded.tobytes()


# ArrayJSON round trips


@few
@given(any_array)
def test_data_form_round_trips(arr):
    assert_same(arr, via_json(codecs.encode_array_json(arr)))


@few
@given(any_array)
def test_base64_form_round_trips_bit_for_bit(arr):
    decoded = via_json(codecs.encode_array_json_base64(arr))
    assert (decoded.dtype, decoded.shape) == (arr.dtype, arr.shape)
    assert decoded.tobytes() == arr.tobytes()


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.uint32, st.integers(1, 2000)))
def test_any_float32_bits_round_trip_through_the_data_form(bits):
    arr = bits.view(np.float32)
    assert_same(arr, via_json(codecs.encode_array_json(arr)))


def test_every_float16_round_trips_through_the_data_form():
    arr = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    assert_same(arr, via_json(codecs.encode_array_json(arr)))


def test_float32_text_that_lands_halfway_between_two_float32_decodes_to_the_right_one():
    # orjson writes 7.038531e-26; as a float64 that is exactly a float32 midpoint,
    # and a plain cast rounds it to the even neighbour instead.
    arr = np.array([363742205], dtype=np.uint32).view(np.float32)
    assert codecs.encode_array_json(arr).endswith(b'"data":[7.038531e-26]}')
    assert via_json(codecs.encode_array_json(arr)).view(np.uint32)[0] == 363742205


def test_design_example_is_written_as_documented():
    arr = np.array([[1.0, 2.5], [3.0, np.nan]])
    expected = b'{"dtype":"float64","shape":[2,2],"data":[[1.0,2.5],[3.0,"NaN"]]}'
    assert codecs.encode_array_json(arr) == expected


@pytest.mark.parametrize(
    ("arr", "data"),
    [
        (np.array([np.inf, -np.inf, -0.0], dtype=np.float32), ["Infinity", "-Infinity", -0.0]),
        (np.array([1 + 2j, complex(np.nan, -1)]), [[1.0, 2.0], ["NaN", -1.0]]),
        (np.array([True, False]), [True, False]),
        (np.array([2**64 - 1, 0], dtype=np.uint64), [2**64 - 1, 0]),
        (np.array([-(2**63), 2**63 - 1]), [-(2**63), 2**63 - 1]),
        (np.array(2.5), 2.5),
        (np.array(np.nan, dtype=np.float16), "NaN"),
        (np.array(3 - 4j, dtype=np.complex64), [3.0, -4.0]),
        (np.zeros((0, 3)), []),
        (np.zeros((2, 0, 3), dtype=np.int8), [[], []]),
    ],
)
def test_data_form_values(arr, data):
    doc = orjson.loads(codecs.encode_array_json(arr))
    assert doc == {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": data}
    assert_same(arr, codecs.decode_array_json(doc, max_bytes=MAX))


def test_negative_zero_survives_both_forms():
    arr = np.array([-0.0, 0.0])
    for encode in (codecs.encode_array_json, codecs.encode_array_json_base64):
        assert via_json(encode(arr)).tobytes() == arr.tobytes()


def test_nan_payload_survives_the_base64_form():
    arr = np.array([0x7FF8_0000_0000_1234, 0xFFF0_0000_0000_0001], dtype=np.uint64).view(np.float64)
    assert via_json(codecs.encode_array_json_base64(arr)).tobytes() == arr.tobytes()


def test_base64_is_little_endian_c_order():
    arr = np.arange(6, dtype=">i4").reshape(2, 3).T
    doc = orjson.loads(codecs.encode_array_json_base64(arr))
    assert doc["shape"] == [3, 2]
    assert base64.b64decode(doc["base64"]) == np.ascontiguousarray(arr, dtype="<i4").tobytes()


def test_encode_accepts_strided_and_big_endian_input():
    arr = np.arange(24, dtype=">f8").reshape(4, 6)[::2, ::-3]
    assert_same(arr.astype(np.float64), via_json(codecs.encode_array_json(arr)))


def test_array_json_document_embeds_in_a_bigger_orjson_document():
    arr = np.arange(4, dtype=np.float32).reshape(2, 2)
    outer = orjson.dumps(
        {"result": codecs.array_json_document(arr)}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    doc = orjson.loads(outer)["result"]
    assert_same(arr, codecs.decode_array_json(doc, max_bytes=MAX))


def test_decode_accepts_integers_in_float_arrays():
    doc = {"dtype": "float32", "shape": [2], "data": [1, 2.5]}
    assert codecs.decode_array_json(doc, max_bytes=MAX).tolist() == [1.0, 2.5]


def test_decoded_arrays_are_writable():
    for doc in (
        {"dtype": "int16", "shape": [2], "data": [1, 2]},
        {"dtype": "int16", "shape": [2], "base64": "AQACAA=="},
    ):
        arr = codecs.decode_array_json(doc, max_bytes=MAX)
        arr += 1
        assert arr.tolist() == [2, 3]


# ArrayJSON refusals


def doc(dtype="float64", shape=(2,), **rest):
    return {"dtype": dtype, "shape": list(shape), **rest}


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (doc("object", data=[1, 2]), UnsupportedDtype, "'object'"),
        (doc("float128", data=[1, 2]), UnsupportedDtype, "'float128'"),
        (doc("f8", data=[1, 2]), UnsupportedDtype, "'f8'"),
        (doc(7, data=[1, 2]), UnsupportedDtype, "7"),
        (doc(shape=(3,), data=[1.0, 2.0]), InvalidArray, "shape"),
        (doc(shape=(2, 2), data=[[1.0, 2.0], [3.0]]), InvalidArray, "ragged"),
        (doc(shape=(2, 2), data=[[1.0, 2.0], 3.0]), InvalidArray, "ragged"),
        (doc(shape=(2,), data=[[1.0], [2.0]]), InvalidArray, "[1.0]"),
        (doc(shape=(), data=[1.0]), InvalidArray, "[1.0]"),
        (doc(data=[1.0, "nan"]), InvalidArray, "'nan'"),
        (doc(data=[1.0, "1.5"]), InvalidArray, "'1.5'"),
        (doc(data=[1.0, None]), InvalidArray, "None"),
        (doc(data=[1.0, True]), InvalidArray, "true/false"),
        (doc(data=["NaN", False]), InvalidArray, "true/false"),
        (doc(data=[1.0, {"re": 1}]), InvalidArray, "re"),
        (doc(data=[1.0, 10**400]), InvalidArray, "out of range"),
        (doc("float16", data=[1.0, 70000.0]), InvalidArray, "out of range"),
        (doc("float32", data=[1.0, 1e39]), InvalidArray, "out of range"),
        (doc("int32", data=[1, 2.0]), InvalidArray, "2.0"),
        (doc("int64", data=[1, 2.5]), InvalidArray, "2.5"),
        (doc("int64", data=[1, "2"]), InvalidArray, "'2'"),
        (doc("int8", data=[1, True]), InvalidArray, "true/false"),
        (doc("int8", data=[1, 128]), InvalidArray, "out of range"),
        (doc("uint8", data=[1, -1]), InvalidArray, "out of range"),
        (doc("int64", data=[1, 2**63]), InvalidArray, "out of range"),
        (doc("uint64", data=[1, 2**64]), InvalidArray, "out of range"),
        (doc("bool", data=[True, 1]), InvalidArray, "got 1"),
        (doc("bool", data=[True, "true"]), InvalidArray, "'true'"),
        (doc("complex128", data=[1.0, 2.0]), InvalidArray, "shape"),
        (doc("complex128", data=[[1.0, 2.0], [1.0, 2.0, 3.0]]), InvalidArray, "ragged"),
        (doc(base64="AAAAAAAAAAAAAAAAAAAA"), InvalidArray, "base64 length"),
        (doc(base64="AAAAAAAAAAAAAAAAAAAAAAAA"), InvalidArray, "holds 18 bytes"),
        (doc(base64="AAAAAAAAAAAAAAAAAAAAAAA="), InvalidArray, "holds 17 bytes"),
        (doc(base64="AAAAAAAA*AAAAAAAAAAAAAA"), InvalidArray, "base64"),
        (doc(base64="AAAAAAAAAAA\nAAAAAAAAAA"), InvalidArray, "base64"),
        (doc(base64=12), InvalidArray, "base64"),
        (doc("bool", base64="AgE="), InvalidArray, "0 or 1"),
        (doc(data=[1.0, 2.0], base64="AAAAAAAAAAAAAAAAAAAAAA=="), InvalidArray, "exactly one"),
        (doc(), InvalidArray, "exactly one"),
        (doc(data=[1.0, 2.0], extra=1), InvalidArray, "extra"),
        ({"shape": [1], "data": [1.0]}, InvalidArray, "dtype"),
        ([1.0, 2.0], InvalidArray, "object"),
        (doc(shape=(-1,), data=[]), InvalidArray, "non-negative"),
        (doc(shape=(True,), data=[1.0]), InvalidArray, "non-negative"),
        (doc(shape=(1.0,), data=[1.0]), InvalidArray, "non-negative"),
        ({"dtype": "int8", "shape": "2", "data": [1, 2]}, InvalidArray, "shape"),
        (doc(shape=(1,) * 33, data=[]), InvalidArray, "32"),
        (doc(shape=(0, 2**62), data=[]), InvalidArray, "too large"),
    ],
)
def test_decode_refuses(bad, error, words):
    with pytest.raises(error) as caught:
        codecs.decode_array_json(bad, max_bytes=MAX)
    assert type(caught.value) is error
    assert words in str(caught.value)


def test_declared_size_over_the_limit_is_refused_before_the_data_is_read():
    bad = doc(shape=(10**6, 10**6), data="not even a list")
    with pytest.raises(TooLarge, match="over 1000"):
        codecs.decode_array_json(bad, max_bytes=1000)
    with pytest.raises(TooLarge):
        codecs.decode_array_json(doc("int8", shape=(1001,), base64=""), max_bytes=1000)


def test_decode_accepts_exactly_the_limit():
    arr = codecs.decode_array_json(doc("int64", shape=(2,), data=[1, 2]), max_bytes=16)
    assert arr.tolist() == [1, 2]


# dtypes


@pytest.mark.parametrize("name", DTYPES)
def test_parse_dtype_accepts_every_supported_name(name):
    assert codecs.parse_dtype(name) == np.dtype(name)


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        (object, "'object'"),
        ("U3", "'<U3'"),
        ("M8[ns]", "'datetime64[ns]'"),
        ("V8", "'|V8'"),
        ([("a", "f8")], "[('a', '<f8')]"),
        ("(2,)f8", "('<f8', (2,))"),
        (np.longdouble, "'float128'"),
    ],
)
def test_check_dtype_refuses_and_names_the_dtype(dtype, name):
    with pytest.raises(UnsupportedDtype) as caught:
        codecs.check_dtype(np.dtype(dtype))
    assert name in str(caught.value)


def test_check_dtype_returns_native_byte_order():
    assert codecs.check_dtype(np.dtype(">f8")) == np.dtype("float64")
    assert codecs.check_dtype(np.dtype(">f8")).isnative


def test_encode_refuses_unsupported_arrays():
    with pytest.raises(UnsupportedDtype, match="object"):
        codecs.encode_array_json(np.array([1, None], dtype=object))
    with pytest.raises(UnsupportedDtype, match="datetime64"):
        codecs.npy_header(np.array(["2024-01-01"], dtype="M8[D]"))


# .npy writing


def saved(arr: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, arr, **kwargs)
    return buffer.getvalue()


@few
@given(any_array, st.integers(8, 96))
def test_npy_chunks_load_with_numpy(arr, chunk_bytes):
    chunks = list(codecs.npy_chunks(arr, chunk_bytes=chunk_bytes))
    data = b"".join(chunks)
    assert len(data) == codecs.npy_nbytes(arr)
    assert chunks[0] == codecs.npy_header(arr)
    assert all(len(chunk) <= chunk_bytes for chunk in chunks[1:])
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    assert (loaded.dtype, loaded.shape) == (arr.dtype, arr.shape)
    assert loaded.tobytes() == arr.tobytes()


def test_npy_bytes_equal_what_numpy_writes():
    arr = np.arange(12, dtype=np.complex64).reshape(3, 4)
    assert b"".join(codecs.npy_chunks(arr)) == saved(arr)


def test_npy_chunks_are_views_of_the_array():
    arr = np.arange(1000, dtype=np.float64)
    chunks = list(codecs.npy_chunks(arr, chunk_bytes=4096))[1:]
    assert len(chunks) == 2
    assert all(isinstance(chunk, memoryview) for chunk in chunks)
    assert all(np.shares_memory(np.asarray(chunk), arr) for chunk in chunks)


def test_npy_chunks_of_fortran_and_big_endian_arrays_are_c_native():
    arr = np.asfortranarray(np.arange(6, dtype=">i2").reshape(2, 3))
    loaded = np.load(io.BytesIO(b"".join(codecs.npy_chunks(arr))), allow_pickle=False)
    assert loaded.dtype.isnative and loaded.flags.c_contiguous
    assert np.array_equal(loaded, arr)


def test_npy_header_is_aligned_version_1():
    header = codecs.npy_header(np.zeros((3, 5), dtype=np.uint16))
    assert header[:8] == b"\x93NUMPY\x01\x00"
    assert len(header) % 64 == 0 and header.endswith(b"\n")


# .npy reading


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12.0).reshape(3, 4),
        np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4)),
        np.arange(6, dtype=">f8").reshape(2, 3),
        np.asfortranarray(np.arange(6, dtype=">c16").reshape(2, 3)),
        np.array(7, dtype=np.uint64),
        np.zeros((0, 3), dtype=np.float16),
        np.array([True, False, True]),
    ],
)
def test_read_npy_of_numpy_files(arr):
    loaded = codecs.read_npy(io.BytesIO(saved(arr)), max_bytes=MAX)
    assert loaded.dtype == arr.dtype.newbyteorder("=") and loaded.dtype.isnative
    assert loaded.flags.c_contiguous and loaded.flags.writeable
    assert loaded.shape == arr.shape
    assert np.array_equal(loaded, arr)


def test_read_npy_header_reads_the_header_only():
    arr = np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3))
    stream = io.BytesIO(saved(arr))
    header = codecs.read_npy_header(stream, max_bytes=MAX)
    assert header.dtype == np.dtype(">f4")
    assert header.shape == (2, 3)
    assert header.fortran_order is True
    assert header.nbytes == 24
    assert stream.tell() == header.offset == len(stream.getvalue()) - 24


class TrickleStream:
    """A stream without readinto that returns at most 5 bytes per read, like a socket."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, size: int) -> bytes:
        return self._data.read(min(size, 5))


def test_read_npy_copes_with_short_reads():
    arr = np.arange(50, dtype=np.int16)
    assert np.array_equal(codecs.read_npy(TrickleStream(saved(arr)), max_bytes=MAX), arr)


def npy_with_header(text: str, body: bytes = b"", version: tuple[int, int] = (1, 0)) -> io.BytesIO:
    raw = text.encode("latin1")
    length_format = "<H" if version == (1, 0) else "<I"
    return io.BytesIO(
        b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(raw)) + raw + body
    )


@pytest.mark.parametrize(
    ("stream", "error", "words"),
    [
        (
            io.BytesIO(saved(np.array([1, None], dtype=object), allow_pickle=True)),
            UnsupportedDtype,
            "object",
        ),
        (io.BytesIO(saved(np.zeros(3, dtype=[("a", "<f8")]))), UnsupportedDtype, "structured"),
        (io.BytesIO(saved(np.array(["ab"]))), UnsupportedDtype, "U2"),
        (io.BytesIO(saved(np.arange(10.0))[:-1]), InvalidArray, "truncated"),
        (io.BytesIO(saved(np.arange(10.0))[:30]), InvalidArray, "truncated"),
        (io.BytesIO(b"\x93NUMPZ" + saved(np.arange(3))[6:]), InvalidArray, "magic"),
        (io.BytesIO(b"\x93NUMPY\x09\x00" + saved(np.arange(3))[8:]), InvalidArray, "version"),
        (io.BytesIO(b"PK\x03\x04"), InvalidArray, "truncated"),
        (npy_with_header("{'descr': '<f8', 'shape': (2,)}"), InvalidArray, "keys"),
        (npy_with_header("__import__('os').system('true')"), InvalidArray, "unreadable"),
        (
            npy_with_header("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}"),
            InvalidArray,
            "fortran",
        ),
        (
            npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}"),
            InvalidArray,
            "non-negative",
        ),
        (
            npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,) * 33}"),
            InvalidArray,
            "unreadable",
        ),
        (
            npy_with_header(repr({"descr": "<f8", "fortran_order": False, "shape": (1,) * 33})),
            InvalidArray,
            "32",
        ),
        (
            npy_with_header("{'descr': 'zz9', 'fortran_order': False, 'shape': (2,)}"),
            UnsupportedDtype,
            "zz9",
        ),
        (npy_with_header(" " * 70000, version=(2, 0)), InvalidArray, "header of 70000 bytes"),
    ],
)
def test_read_npy_refuses(stream, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(")):
        codecs.read_npy(stream, max_bytes=MAX)


def test_read_npy_refuses_a_declared_shape_over_the_limit_before_allocating():
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    with pytest.raises(TooLarge):
        codecs.read_npy_header(npy_with_header(text), max_bytes=MAX)
    with pytest.raises(TooLarge):
        codecs.read_npy(io.BytesIO(saved(np.zeros(101, dtype=np.uint8))), max_bytes=100)


# PNG


@pytest.mark.parametrize(
    ("shape", "mode"), [((5, 7), "L"), ((5, 7, 3), "RGB"), ((5, 7, 4), "RGBA")]
)
def test_png_decodes_to_the_same_pixels(shape, mode):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    with Image.open(io.BytesIO(codecs.encode_png(image))) as png:
        assert png.format == "PNG" and png.mode == mode
        assert np.array_equal(np.asarray(png), image)


def test_png_of_a_strided_view():
    image = np.arange(200, dtype=np.uint8).reshape(10, 20)[:, ::2]
    with Image.open(io.BytesIO(codecs.encode_png(image, compress_level=9))) as png:
        assert np.array_equal(np.asarray(png), image)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((4, 4), dtype=np.float64),
        np.zeros((4, 4), dtype=bool),
        np.zeros((4, 4, 2), dtype=np.uint8),
        np.zeros(4, dtype=np.uint8),
        np.zeros((0, 4), dtype=np.uint8),
        np.zeros((2, 4, 4, 3), dtype=np.uint8),
    ],
)
def test_png_refuses_non_images(image):
    with pytest.raises(InvalidArray, match="uint8"):
        codecs.encode_png(image)


@pytest.fixture(params=["simd", "stdlib"])
def base64_impl(request, monkeypatch):
    """Both base64 paths: pybase64 (SIMD) and the stdlib fallback used without it."""
    if request.param == "stdlib":
        monkeypatch.setattr(codecs, "_simd_base64", None)
    elif codecs._simd_base64 is None:
        pytest.skip("pybase64 is not installed")
    return request.param


@pytest.mark.parametrize(
    "text",
    [
        "AAAAAAAA*AAAAAAAAAAAAAA",
        "AAAAAAAAAAA\nAAAAAAAAAA",
        "AAAAAAAAAAA AAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAA=A=",
        "AAAAAAAAAAAAAAAAAAAAAA\u00e9",
        "AAAAAAAAAAAAAAAAAAAA-_==",
    ],
)
def test_both_base64_paths_refuse_the_same_text(base64_impl, text):
    with pytest.raises(InvalidArray):
        codecs.decode_array_json({"dtype": "float64", "shape": [2], "base64": text}, max_bytes=MAX)


@few
@given(arr=any_array)
def test_both_base64_paths_round_trip(arr):
    encoded = codecs.encode_array_json_base64(arr)
    simd = codecs._simd_base64
    try:
        codecs._simd_base64 = None
        assert codecs.encode_array_json_base64(arr) == encoded
        assert via_json(encoded).tobytes() == np.ascontiguousarray(arr).tobytes()
    finally:
        codecs._simd_base64 = simd
    decoded = via_json(encoded)
    assert decoded.flags.writeable
    assert decoded.tobytes() == np.ascontiguousarray(arr).tobytes()
