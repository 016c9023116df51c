import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from arrayq.storage.colormaps import COLORMAPS
from arrayq.worker import builtin_ops
from arrayq.worker.ops import Op, get_op, load_ops

load_ops()

BUILT_IN = [
    "random",
    "matmul",
    "fft",
    "solve",
    "svd",
    "stats",
    "gaussian_blur",
    "mandelbrot",
    "render",
    "sleep",
]


class Recorder:
    def __init__(self) -> None:
        self.fractions: list[float] = []

    def __call__(self, fraction: float) -> None:
        self.fractions.append(fraction)


def run(name: str, params: dict[str, Any] | None = None, **inputs: np.ndarray) -> np.ndarray:
    op = get_op(name)
    return op.func(op.params.model_validate(params or {}), Recorder(), **inputs)


def nbytes(name: str, params: dict[str, Any] | None = None, **shapes: tuple[int, ...]) -> int:
    op = get_op(name)
    assert op.result_nbytes is not None
    return op.result_nbytes(op.params.model_validate(params or {}), shapes)


def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# --- registry ---------------------------------------------------------------


def test_every_built_in_op_is_registered_with_a_summary() -> None:
    ops = load_ops()
    assert set(BUILT_IN) <= set(ops)
    assert all(ops[name].summary != name for name in BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_params_forbid_unknown_fields(name: str) -> None:
    with pytest.raises(ValidationError, match="bogus"):
        get_op(name).params.model_validate({"bogus": 1})


def test_slow_ops_go_to_the_long_queue() -> None:
    queues = {name: get_op(name).queue for name in BUILT_IN}
    assert {name for name, queue in queues.items() if queue == "long"} == {"sleep", "mandelbrot"}


def test_inputs_and_result_kinds_follow_the_design() -> None:
    op: Op = get_op("matmul")
    assert op.inputs == ("a", "b")
    assert get_op("mandelbrot").result == "image"
    assert get_op("render").result == "image"
    assert get_op("random").inputs == ()


def test_render_schema_lists_the_colormaps() -> None:
    schema = get_op("render").describe()["params"]
    assert schema["properties"]["cmap"]["enum"] == list(COLORMAPS)
    assert schema["properties"]["cmap"]["default"] == "viridis"


# --- random -----------------------------------------------------------------


def test_random_defaults_to_normal_float64() -> None:
    x = run("random", {"shape": [200, 100], "seed": 1})
    assert x.shape == (200, 100)
    assert x.dtype == np.float64
    assert abs(x.mean()) < 0.05
    assert abs(x.std() - 1) < 0.05
    assert x.min() < 0


def test_random_is_deterministic_by_seed() -> None:
    first = run("random", {"shape": [5, 3], "seed": 7})
    np.testing.assert_array_equal(first, run("random", {"shape": [5, 3], "seed": 7}))
    assert not np.array_equal(first, run("random", {"shape": [5, 3], "seed": 8}))


def test_random_without_seed_differs_between_calls() -> None:
    assert not np.array_equal(run("random", {"shape": [8]}), run("random", {"shape": [8]}))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_uniform_lies_in_unit_interval(dtype: str) -> None:
    x = run("random", {"shape": [10000], "seed": 3, "distribution": "uniform", "dtype": dtype})
    assert x.dtype == np.dtype(dtype)
    assert x.min() >= 0
    assert x.max() < 1
    assert abs(x.mean() - 0.5) < 0.02


def test_random_float32_is_drawn_directly() -> None:
    x = run("random", {"shape": [4], "seed": 5, "dtype": "float32"})
    expected = np.random.default_rng(5).standard_normal(4, dtype=np.float32)
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize(("shape", "expected"), [([], ()), ([0, 3], (0, 3))])
def test_random_scalar_and_empty_shapes(shape: list[int], expected: tuple[int, ...]) -> None:
    assert run("random", {"shape": shape, "seed": 0}).shape == expected


def test_random_result_nbytes_uses_python_ints() -> None:
    assert nbytes("random", {"shape": [1000, 1000, 1000]}) == 8 * 10**9
    assert nbytes("random", {"shape": [1000, 1000], "dtype": "float32"}) == 4 * 10**6
    assert nbytes("random", {"shape": [2**40] * 4}) == 2**160 * 8


@pytest.mark.parametrize(
    "params",
    [
        {"shape": [-1]},
        {"shape": [1] * 33},
        {},
        {"shape": [2], "seed": -1},
        {"shape": [2], "distribution": "cauchy"},
        {"shape": [2], "dtype": "int8"},
    ],
)
def test_random_refuses_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        get_op("random").params.model_validate(params)


# --- matmul, solve, svd -----------------------------------------------------


def test_matmul_matches_numpy_including_batches() -> None:
    a = rng().standard_normal((3, 4, 5))
    b = rng().standard_normal((5, 2))
    np.testing.assert_allclose(run("matmul", a=a, b=b), a @ b)


def test_matmul_shape_mismatch_raises_numpys_error() -> None:
    with pytest.raises(ValueError, match="mismatch"):
        run("matmul", a=np.ones((2, 3)), b=np.ones((2, 3)))


@pytest.mark.parametrize(
    ("a", "b", "elements"),
    [
        ((3, 4), (4, 5), 15),
        ((4,), (4,), 1),
        ((2, 4), (4,), 2),
        ((4,), (4, 6), 6),
        ((1000, 1, 2, 3), (1, 500, 3, 4), 1000 * 500 * 8),
    ],
)
def test_matmul_result_nbytes_bounds_the_result(
    a: tuple[int, ...], b: tuple[int, ...], elements: int
) -> None:
    assert nbytes("matmul", a=a, b=b) == elements * 16


def test_matmul_result_nbytes_leaves_refused_shapes_to_numpy() -> None:
    assert nbytes("matmul", a=(2, 3, 4), b=(5, 4, 1)) == 0
    assert nbytes("matmul", a=(), b=(3,)) == 0


def test_solve_residual_is_small() -> None:
    a = rng().standard_normal((6, 6)) + 6 * np.eye(6)
    b = rng().standard_normal((6, 2))
    x = run("solve", a=a, b=b)
    np.testing.assert_allclose(a @ x, b, atol=1e-12)


def test_solve_singular_matrix_fails_with_linalg_error() -> None:
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        run("solve", a=np.ones((3, 3)), b=np.ones(3))


def test_solve_result_nbytes_covers_broadcast_batches() -> None:
    assert nbytes("solve", a=(4, 4), b=(4,)) == 4 * 16
    assert nbytes("solve", a=(100, 1, 2, 2), b=(1, 300, 2, 3)) == 100 * 300 * 6 * 16


def test_svd_matches_numpy() -> None:
    x = rng().standard_normal((7, 4))
    np.testing.assert_allclose(run("svd", x=x), np.linalg.svd(x, compute_uv=False))
    assert run("svd", x=x).shape == (4,)


# --- fft and stats ----------------------------------------------------------


def test_fft_over_all_axes_matches_numpy() -> None:
    x = rng().standard_normal((4, 6, 3))
    result = run("fft", x=x)
    assert result.dtype == np.complex128
    np.testing.assert_allclose(result, np.fft.fftn(x))


def test_fft_over_given_axes() -> None:
    x = rng().standard_normal((4, 6))
    np.testing.assert_allclose(run("fft", {"axes": [0]}, x=x), np.fft.fft(x, axis=0))
    np.testing.assert_allclose(run("fft", {"axes": [-1]}, x=x), np.fft.fft(x, axis=1))


def test_fft_result_nbytes_is_complex_sized() -> None:
    assert nbytes("fft", x=(10, 20)) == 200 * 16


def test_stats_over_everything() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]])
    result = run("stats", x=x)
    assert result.shape == (4,)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, [4.0, np.std(x), 1.0, 9.0])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stats_along_an_axis(axis: int) -> None:
    x = rng().integers(-50, 50, size=(5, 3)).astype(np.int32)
    result = run("stats", {"axis": axis}, x=x)
    expected = [x.mean(axis), x.std(axis), x.min(axis), x.max(axis)]
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, np.stack(expected))


def test_stats_of_float32_is_float64() -> None:
    x = np.full(1000, 0.1, dtype=np.float32)
    assert run("stats", x=x).dtype == np.float64


@pytest.mark.parametrize(
    ("x", "message"),
    [(np.zeros((0, 3)), "non-empty"), (np.ones(3, dtype=np.complex64), "real")],
)
def test_stats_refuses_empty_and_complex(x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run("stats", x=x)


# --- gaussian blur ----------------------------------------------------------


def reflect(index: int, length: int) -> int:
    """SciPy's mode='reflect': d c b a | a b c d | d c b a, repeating with period 2n."""
    index %= 2 * length
    return index if index < length else 2 * length - 1 - index


def slow_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(4 * sigma + 0.5)
    weights = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-radius, radius + 1)]
    total = sum(weights)
    kernel = [w / total for w in weights]
    rows, cols = x.shape
    out = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            for i, wi in enumerate(kernel):
                for j, wj in enumerate(kernel):
                    source = x[reflect(r + i - radius, rows), reflect(c + j - radius, cols)]
                    out[r, c] += wi * wj * source
    return out


@pytest.mark.parametrize(
    ("shape", "sigma"), [((7, 9), 1.0), ((5, 6), 0.7), ((3, 4), 2.0), ((1, 5), 1.3)]
)
def test_blur_matches_the_direct_convolution(shape: tuple[int, int], sigma: float) -> None:
    x = rng().standard_normal(shape)
    np.testing.assert_allclose(
        run("gaussian_blur", {"sigma": sigma}, x=x), slow_blur(x, sigma), atol=1e-12
    )


def test_blur_defaults_to_sigma_one() -> None:
    x = rng().standard_normal((6, 6))
    np.testing.assert_allclose(run("gaussian_blur", x=x), slow_blur(x, 1.0), atol=1e-12)


def test_blur_keeps_a_constant_image() -> None:
    x = np.full((20, 30), 3.5)
    np.testing.assert_allclose(run("gaussian_blur", {"sigma": 4.0}, x=x), x)


def test_blur_preserves_the_sum_away_from_borders() -> None:
    x = np.zeros((41, 41))
    x[20, 20] = 10.0
    blurred = run("gaussian_blur", {"sigma": 2.0}, x=x)
    assert blurred.sum() == pytest.approx(10.0)
    assert blurred[20, 20] == blurred.max()
    np.testing.assert_allclose(blurred, blurred.T)
    np.testing.assert_allclose(blurred, blurred[::-1, ::-1])


def test_blur_commutes_with_transpose_and_flips() -> None:
    x = rng().standard_normal((12, 17))
    blurred = run("gaussian_blur", {"sigma": 1.5}, x=x)
    np.testing.assert_allclose(run("gaussian_blur", {"sigma": 1.5}, x=x.T), blurred.T)
    np.testing.assert_allclose(run("gaussian_blur", {"sigma": 1.5}, x=x[:, ::-1]), blurred[:, ::-1])


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.float32, np.float32),
        (np.float16, np.float16),
        (np.float64, np.float64),
        (np.uint8, np.float64),
        (np.int64, np.float64),
        (np.bool_, np.float64),
    ],
)
def test_blur_result_dtype(dtype: type, expected: type) -> None:
    x = (rng().standard_normal((8, 8)) > 0).astype(dtype)
    result = run("gaussian_blur", x=x)
    assert result.dtype == expected
    assert result.shape == (8, 8)
    np.testing.assert_allclose(result, slow_blur(x.astype(np.float64), 1.0), rtol=1e-2, atol=1e-3)


def test_blur_of_an_empty_image_is_empty() -> None:
    assert run("gaussian_blur", x=np.zeros((0, 4), dtype=np.float32)).shape == (0, 4)


@pytest.mark.parametrize(
    "x", [np.zeros(5), np.zeros((2, 2, 2)), np.zeros((3, 3), dtype=np.complex128)]
)
def test_blur_refuses_all_but_real_2d_arrays(x: np.ndarray) -> None:
    with pytest.raises(ValueError, match="2-D"):
        run("gaussian_blur", x=x)


@pytest.mark.parametrize("sigma", [0, -1, 101, float("nan")])
def test_blur_refuses_bad_sigma(sigma: float) -> None:
    with pytest.raises(ValidationError):
        get_op("gaussian_blur").params.model_validate({"sigma": sigma})


def test_blur_result_nbytes_is_float64_sized() -> None:
    assert nbytes("gaussian_blur", x=(100, 50)) == 100 * 50 * 8


# --- mandelbrot -------------------------------------------------------------


def pixel_of(point: complex, width: int = 800, height: int = 600) -> tuple[int, int]:
    column = round((point.real + 2.5) / 3.5 * (width - 1))
    row = round((1.25 - point.imag) / 2.5 * (height - 1))
    return row, column


def test_escape_counts_of_known_points() -> None:
    c = np.array([0, 1, 2, -2, 3j, -0.75 + 0.2j])
    counts = builtin_ops.escape_counts(c, 100, Recorder())
    assert counts[:4].tolist() == [0, 3, 2, 0]
    assert counts[4] == 1
    assert 0 < counts[5] < 100


def test_mandelbrot_default_image() -> None:
    op = get_op("mandelbrot")
    progress = Recorder()
    image = op.func(op.params(), progress)
    assert image.shape == (600, 800, 3)
    assert image.dtype == np.uint8
    assert image[pixel_of(-0.5 + 0j)].tolist() == [0, 0, 0]
    assert image[pixel_of(0.1 + 0.1j)].tolist() == [0, 0, 0]
    assert (
        image[0, 0].tolist()
        == COLORMAPS["viridis"][int(256 * math.log(2) / math.log(101))].tolist()
    )
    assert image[pixel_of(0.4 + 0j)].any()


def test_mandelbrot_reports_progress_every_few_iterations() -> None:
    op = get_op("mandelbrot")
    progress = Recorder()
    op.func(op.params(width=40, height=30, max_iter=500), progress)
    assert progress.fractions == sorted(progress.fractions)
    assert 10 <= len(progress.fractions) < 500
    assert progress.fractions[-1] == pytest.approx(1.0)
    assert all(0 <= f <= 1 for f in progress.fractions)


def test_mandelbrot_bands_give_the_same_image(monkeypatch: pytest.MonkeyPatch) -> None:
    op = get_op("mandelbrot")
    params = op.params(width=50, height=37, max_iter=60, x_min=-0.8, x_max=-0.7, y_min=0.0)
    whole = op.func(params, Recorder())
    monkeypatch.setattr(builtin_ops, "_BAND_POINTS", 50 * 5)
    progress = Recorder()
    np.testing.assert_array_equal(op.func(params, progress), whole)
    assert progress.fractions == sorted(progress.fractions)
    assert progress.fractions[-1] == 1.0


def test_mandelbrot_with_one_iteration() -> None:
    image = run("mandelbrot", {"width": 4, "height": 3, "max_iter": 1})
    assert image.shape == (3, 4, 3)


def test_mandelbrot_result_nbytes() -> None:
    assert nbytes("mandelbrot") == 800 * 600 * 3
    assert nbytes("mandelbrot", {"width": 8192, "height": 8192}) == 8192 * 8192 * 3


@pytest.mark.parametrize(
    "params",
    [
        {"x_min": 1.0, "x_max": 1.0},
        {"y_min": 2.0},
        {"width": 0},
        {"height": 8193},
        {"max_iter": 0},
        {"max_iter": 10001},
        {"x_min": float("-inf")},
    ],
)
def test_mandelbrot_refuses_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        get_op("mandelbrot").params.model_validate(params)


# --- render -----------------------------------------------------------------


def test_render_maps_the_data_range_to_the_ends() -> None:
    x = np.array([[0.0, 1.0, 2.0]])
    image = run("render", {"cmap": "magma"}, x=x)
    assert image.shape == (1, 3, 3)
    assert image.dtype == np.uint8
    assert image[0, 0].tolist() == COLORMAPS["magma"][0].tolist()
    assert image[0, 2].tolist() == COLORMAPS["magma"][255].tolist()


def test_render_uses_given_limits_and_viridis_by_default() -> None:
    image = run("render", {"vmin": 0.0, "vmax": 10.0}, x=np.array([[-5.0, 20.0]]))
    assert image[0, 0].tolist() == [0x44, 0x01, 0x54]
    assert image[0, 1].tolist() == [0xFD, 0xE7, 0x25]


def test_render_refuses_non_2d_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        run("render", x=np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "params", [{"cmap": "jet"}, {"vmin": 2.0, "vmax": 1.0}, {"vmin": float("nan")}]
)
def test_render_refuses_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        get_op("render").params.model_validate(params)


def test_render_result_nbytes() -> None:
    assert nbytes("render", x=(30, 40)) == 30 * 40 * 3


# --- sleep ------------------------------------------------------------------


def test_sleep_reports_progress_and_returns_its_seconds() -> None:
    op = get_op("sleep")
    progress = Recorder()
    result = op.func(op.params(seconds=0.12), progress)
    assert result.shape == ()
    assert result.dtype == np.float64
    assert float(result) == 0.12
    assert len(progress.fractions) >= 3
    assert progress.fractions == sorted(progress.fractions)
    assert progress.fractions[-1] == 1.0


def test_sleep_zero_returns_at_once() -> None:
    assert float(run("sleep", {"seconds": 0})) == 0.0


@pytest.mark.parametrize("seconds", [-0.1, 3601])
def test_sleep_refuses_bad_seconds(seconds: float) -> None:
    with pytest.raises(ValidationError):
        get_op("sleep").params.model_validate({"seconds": seconds})
