import numpy as np
import pytest

from arrayq.storage.colormaps import COLORMAPS, colormap_names, render

# matplotlib's own colors at table positions 0, 64, 128, 192 and 255.
MATPLOTLIB_COLORS = {
    "viridis": ["440154", "3b528b", "21918c", "5ec962", "fde725"],
    "magma": ["000004", "51127c", "b73779", "fc8961", "fcfdbf"],
    "inferno": ["000004", "57106e", "bc3754", "f98e09", "fcffa4"],
    "plasma": ["0d0887", "7e03a8", "cc4778", "f89540", "f0f921"],
    "cividis": ["00224e", "434e6c", "7d7c78", "bcae6c", "fee838"],
    "gray": ["000000", "404040", "808080", "c0c0c0", "ffffff"],
    "hot": ["0b0000", "b30000", "ff5c00", "ffff07", "ffffff"],
    "coolwarm": ["3b4cc0", "8db0fe", "dddcdc", "f4987a", "b40426"],
}
POSITIONS = [0, 64, 128, 192, 255]


def rgb(hex_color: str) -> list[int]:
    return list(bytes.fromhex(hex_color))


def test_names_list_every_table_with_viridis_first() -> None:
    assert colormap_names()[0] == "viridis"
    assert set(colormap_names()) == set(COLORMAPS) >= set(MATPLOTLIB_COLORS)


@pytest.mark.parametrize("name", list(MATPLOTLIB_COLORS))
def test_table_is_256_rgb_bytes_and_read_only(name: str) -> None:
    table = COLORMAPS[name]
    assert table.shape == (256, 3)
    assert table.dtype == np.uint8
    with pytest.raises(ValueError):
        table[0, 0] = 1


@pytest.mark.parametrize("name", list(MATPLOTLIB_COLORS))
def test_table_endpoints_match_matplotlib_exactly(name: str) -> None:
    first, *_, last = MATPLOTLIB_COLORS[name]
    assert COLORMAPS[name][0].tolist() == rgb(first)
    assert COLORMAPS[name][255].tolist() == rgb(last)


@pytest.mark.parametrize("name", list(MATPLOTLIB_COLORS))
def test_table_stays_close_to_matplotlib_in_between(name: str) -> None:
    expected = np.array([rgb(color) for color in MATPLOTLIB_COLORS[name]])
    actual = COLORMAPS[name][POSITIONS].astype(int)
    assert np.abs(actual - expected).max() <= 6


def test_gray_renders_a_byte_ramp_as_itself() -> None:
    ramp = np.arange(256).reshape(16, 16)
    image = render(ramp, "gray")
    assert image.shape == (16, 16, 3)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], ramp)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_data_range_maps_to_the_ends_of_the_table() -> None:
    x = np.array([[-3.0, 0.5], [7.0, 2.0]])
    image = render(x)
    viridis = COLORMAPS["viridis"]
    assert image[0, 0].tolist() == viridis[0].tolist()
    assert image[1, 0].tolist() == viridis[255].tolist()


def test_nan_is_black_and_infinities_clip_to_the_ends() -> None:
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, 1.0]])
    image = render(x, "hot")
    hot = COLORMAPS["hot"]
    assert image[0, 0].tolist() == [0, 0, 0]
    assert image[0, 1].tolist() == hot[255].tolist()
    assert image[0, 2].tolist() == hot[0].tolist()
    assert image[0, 3].tolist() == hot[0].tolist()
    assert image[0, 4].tolist() == hot[255].tolist()


def test_limits_come_from_finite_values_only() -> None:
    x = np.array([[np.inf, 10.0, 20.0, -np.inf]])
    image = render(x, "gray")
    assert image[0, :, 0].tolist() == [255, 0, 255, 0]


def test_constant_image_maps_to_the_low_end() -> None:
    image = render(np.full((3, 4), 5.0), "plasma")
    assert (image == COLORMAPS["plasma"][0]).all()


def test_equal_given_limits_split_below_and_above() -> None:
    image = render(np.array([[1.0, 2.0, 3.0, np.inf]]), "gray", vmin=2.0, vmax=2.0)
    assert image[0, :, 0].tolist() == [0, 0, 255, 255]


def test_all_nan_image_is_black() -> None:
    assert not render(np.full((2, 2), np.nan)).any()


def test_vmin_and_vmax_clip_values_outside() -> None:
    x = np.array([[-100.0, 0.0, 50.0, 100.0, 1000.0]])
    image = render(x, "gray", vmin=0.0, vmax=100.0)
    assert image[0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_only_one_limit_given_takes_the_other_from_data() -> None:
    x = np.array([[0.0, 5.0, 10.0]])
    assert render(x, "gray", vmax=20.0)[0, :, 0].tolist() == [0, 64, 128]
    assert render(x, "gray", vmin=-10.0)[0, :, 0].tolist() == [128, 192, 255]


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int16, np.uint32, np.float16, np.float32])
def test_every_real_dtype_renders(dtype: type) -> None:
    x = np.array([[0, 1], [1, 0]], dtype=dtype)
    image = render(x, "gray")
    assert image[..., 0].tolist() == [[0, 255], [255, 0]]


def test_wide_integers_keep_their_precision() -> None:
    x = (np.int64(2**40) + np.arange(4, dtype=np.int64)).reshape(2, 2)
    assert render(x, "gray")[..., 0].tolist() == [[0, 85], [170, 255]]


def test_huge_float_range_does_not_warn_or_break() -> None:
    x = np.array([[-1e308, 1e308]])
    assert render(x, "gray")[0, :, 0].tolist() == [0, 255]


def test_unknown_colormap_names_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"available: viridis, .*coolwarm"):
        render(np.zeros((2, 2)), "jet")


@pytest.mark.parametrize(
    "x",
    [np.zeros((2, 2), dtype=np.complex128), np.zeros(4), np.zeros((2, 2, 2))],
    ids=["complex", "1-d", "3-d"],
)
def test_refuses_what_it_cannot_render(x: np.ndarray) -> None:
    with pytest.raises(ValueError):
        render(x)


@pytest.mark.parametrize(("vmin", "vmax"), [(2.0, 1.0), (np.nan, 1.0), (0.0, np.inf)])
def test_refuses_bad_limits(vmin: float, vmax: float) -> None:
    with pytest.raises(ValueError):
        render(np.zeros((2, 2)), vmin=vmin, vmax=vmax)
