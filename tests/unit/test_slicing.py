import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arrayq.storage import codecs
from arrayq.storage.slicing import (
    InvalidSlice,
    canonical,
    parse_slice,
    read_slice,
    sliced_nbytes,
)

SHAPE = (23, 7, 3)


class BytesStore:
    """The two methods read_slice uses, over bytes in memory: the S3 code path."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read = 0

    def local_path(self, key):
        return None

    def read_range(self, key, start, length):
        self.read += min(length, len(self.data) - start)
        return self.data[start : start + length]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


bound = st.one_of(st.none(), st.integers(-30, 30))
part = st.one_of(
    st.integers(-7, 6).map(str),
    st.tuples(bound, bound, st.one_of(st.none(), st.integers(-4, 4).filter(bool))).map(
        lambda t: ":".join("" if v is None else str(v) for v in t)
    ),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(part, min_size=1, max_size=3))
def test_matches_numpy_basic_slicing(parts):
    array = np.arange(np.prod(SHAPE), dtype=">i4").reshape(SHAPE)
    text = ",".join(parts)
    try:
        index = parse_slice(text, SHAPE)
    except InvalidSlice:
        return
    expected = array[index]
    got = read_slice(BytesStore(npy(array)), "k", index, max_bytes=1 << 30)
    assert got.dtype == np.dtype("int32") and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert sliced_nbytes(SHAPE, 4, index) == expected.nbytes


HEADER_READ = codecs.NPY_MAX_HEADER_BYTES + 16


def test_reads_only_the_rows_it_needs():
    array = np.zeros((1000, 256))  # 2 KiB rows, 2 MB in all
    store = BytesStore(npy(array))
    read_slice(store, "k", parse_slice("10:20,5", array.shape), max_bytes=1 << 30)
    assert store.read == HEADER_READ + 10 * 256 * 8


def test_large_rows_with_a_step_are_read_one_by_one():
    array = np.arange(50 * 8192, dtype=np.float64).reshape(50, 8192)  # 64 KiB rows
    store = BytesStore(npy(array))
    got = read_slice(store, "k", parse_slice("::10", array.shape), max_bytes=1 << 30)
    np.testing.assert_array_equal(got, array[::10])
    assert store.read == HEADER_READ + 5 * 8192 * 8


@pytest.mark.parametrize(
    "text", ["", "a", "1:2:3:4", "0:1,0:1,0:1,0:1", "99", "-24", "::0", "1;2", "__import__('os')"]
)
def test_refuses_malformed_or_out_of_range(text):
    with pytest.raises(InvalidSlice):
        parse_slice(text, SHAPE)


def test_zero_d_cannot_be_sliced():
    with pytest.raises(InvalidSlice):
        parse_slice("0", ())


@pytest.mark.parametrize(
    "text",
    ["\uff10:\uff11", "0:1,0:2\r\n", "0:1\n", "\u0661:\u0663", "0:\u00b2", "0:1\x00", "\u00a00:1"],
)
def test_only_ascii_digits_and_spaces_are_slicing_text(text):
    with pytest.raises(InvalidSlice):
        parse_slice(text, SHAPE)


def test_canonical_text_is_ascii_and_means_the_same_index():
    index = parse_slice(" -1 , ::2 ,1: ", SHAPE)
    text = canonical(index)
    assert text.isascii() and "\n" not in text
    assert parse_slice(text, SHAPE) == index
