"""The built-in ops of DESIGN.md: plain NumPy functions registered with `@op`.

Ops whose result can outgrow their inputs declare `result_nbytes`, an upper
bound computed from the params and input shapes before anything is allocated.
"""

import math
import time
from collections.abc import Iterable
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

from arrayq.storage import colormaps
from arrayq.worker.ops import NoParams, Progress, op

Shapes = dict[str, tuple[int, ...]]
# complex128: the widest dtype an input can have, so a bound that holds for every input dtype.
_MAX_ITEMSIZE = 16
# Mandelbrot works on bands of about this many points, so its memory stays bounded.
_BAND_POINTS = 1 << 20
_SLEEP_STEP = 0.05


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _nbytes(shape: Iterable[int], itemsize: int) -> int:
    return math.prod(shape) * itemsize


def _batch_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(a[:-2], b[:-2]))
    except ValueError:
        return None


# --- random -----------------------------------------------------------------


class RandomParams(_Params):
    shape: list[Annotated[int, Field(ge=0)]] = Field(max_length=32)
    seed: int | None = Field(default=None, ge=0)
    distribution: Literal["normal", "uniform"] = "normal"
    dtype: Literal["float32", "float64"] = "float64"


def _random_nbytes(params: RandomParams, _: Shapes) -> int:
    return _nbytes(params.shape, np.dtype(params.dtype).itemsize)


def _seeded(params: RandomParams) -> bool:
    return params.seed is not None


@op("random", params=RandomParams, result_nbytes=_random_nbytes, cache=_seeded)
def random(params: RandomParams, progress: Progress) -> np.ndarray:
    """Random numbers: standard normal, or uniform in [0, 1)."""
    rng = np.random.default_rng(params.seed)
    dtype = np.dtype(params.dtype)
    if params.distribution == "normal":
        return np.asarray(rng.standard_normal(size=params.shape, dtype=dtype))
    return np.asarray(rng.random(size=params.shape, dtype=dtype))


# --- linear algebra ---------------------------------------------------------


def _matmul_nbytes(_: NoParams, shapes: Shapes) -> int:
    """Shapes that NumPy will refuse count as 0: the op then fails with NumPy's message."""
    a, b = shapes["a"], shapes["b"]
    batch = _batch_shape(a, b)
    if not a or not b or batch is None:
        return 0
    rows = a[-2:-1]
    columns = b[-1:] if len(b) > 1 else ()
    return _nbytes(batch + rows + columns, _MAX_ITEMSIZE)


@op("matmul", inputs=["a", "b"], result_nbytes=_matmul_nbytes)
def matmul(params: NoParams, progress: Progress, *, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product `a @ b`."""
    return np.asarray(np.matmul(a, b))


def _solve_nbytes(_: NoParams, shapes: Shapes) -> int:
    a, b = shapes["a"], shapes["b"]
    batch = _batch_shape(a, b)
    if batch is None:
        return 0
    return _nbytes(batch + b[-2:], _MAX_ITEMSIZE)


@op("solve", inputs=["a", "b"], result_nbytes=_solve_nbytes)
def solve(params: NoParams, progress: Progress, *, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve `a @ x = b` for x (a singular `a` fails the job)."""
    return np.linalg.solve(a, b)


@op("svd", inputs=["x"])
def svd(params: NoParams, progress: Progress, *, x: np.ndarray) -> np.ndarray:
    """Singular values, largest first."""
    return np.linalg.svd(x, compute_uv=False)


@op("eigh", inputs=["x"], outputs=["eigenvalues", "eigenvectors"])
def eigh(params: NoParams, progress: Progress, *, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix."""
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise ValueError(f"eigh needs a square 2-D array, got shape {list(x.shape)}")
    values, vectors = np.linalg.eigh(x)
    return values, vectors


class HistogramParams(_Params):
    bins: int = Field(default=10, ge=1, le=10_000_000)
    range: tuple[FiniteFloat, FiniteFloat] | None = None

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError("range must be [lo, hi] with lo < hi")
        return value


def _histogram_nbytes(params: HistogramParams, _: Shapes) -> int:
    return 8 * params.bins + 8 * (params.bins + 1)


@op(
    "histogram",
    params=HistogramParams,
    inputs=["x"],
    outputs=["counts", "edges"],
    result_nbytes=_histogram_nbytes,
)
def histogram(
    params: HistogramParams, progress: Progress, *, x: np.ndarray
) -> dict[str, np.ndarray]:
    """Counts (int64) and bin edges (float64) of the values, as `np.histogram`."""
    if x.dtype.kind == "c":
        raise ValueError(f"histogram needs a real array, not {x.dtype}")
    counts, edges = np.histogram(x, bins=params.bins, range=params.range)
    return {"counts": counts.astype(np.int64), "edges": edges.astype(np.float64)}


# --- fft and stats ----------------------------------------------------------


class FftParams(_Params):
    axes: list[int] | None = Field(default=None, max_length=32)


def _fft_nbytes(_: FftParams, shapes: Shapes) -> int:
    return _nbytes(shapes["x"], _MAX_ITEMSIZE)


@op("fft", params=FftParams, inputs=["x"], result_nbytes=_fft_nbytes)
def fft(params: FftParams, progress: Progress, *, x: np.ndarray) -> np.ndarray:
    """Complex n-dimensional FFT, over all axes or the given ones."""
    return np.fft.fftn(x, axes=params.axes)


class StatsParams(_Params):
    axis: int | None = None


@op("stats", params=StatsParams, inputs=["x"])
def stats(params: StatsParams, progress: Progress, *, x: np.ndarray) -> np.ndarray:
    """Mean, standard deviation, minimum and maximum, stacked along a new first axis."""
    if x.size == 0:
        raise ValueError(f"stats needs a non-empty array, got shape {x.shape}")
    if x.dtype.kind == "c":
        raise ValueError(f"stats needs a real array, not {x.dtype}")
    axis = params.axis
    parts = [
        np.mean(x, axis=axis, dtype=np.float64),
        np.std(x, axis=axis, dtype=np.float64),
        np.min(x, axis=axis),
        np.max(x, axis=axis),
    ]
    return np.stack([np.asarray(part, dtype=np.float64) for part in parts])


# --- gaussian blur ----------------------------------------------------------


class GaussianBlurParams(_Params):
    sigma: float = Field(default=1.0, gt=0, le=100)


def _blur_nbytes(_: GaussianBlurParams, shapes: Shapes) -> int:
    return _nbytes(shapes["x"], np.dtype(np.float64).itemsize)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalized 1-D Gaussian weights of radius `int(4 * sigma + 0.5)`, as SciPy truncates."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _blur_along(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Convolve along one axis; the edges mirror (SciPy's 'reflect', NumPy's 'symmetric').

    The kernel is symmetric, so each weight multiplies the sum of its two mirrored windows.
    """
    radius = kernel.size // 2
    length = x.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad, mode="symmetric").swapaxes(0, axis)
    out = kernel[radius] * padded[radius : radius + length]
    pair = np.empty_like(out)
    for offset in range(radius):
        mirror = 2 * radius - offset
        np.add(padded[offset : offset + length], padded[mirror : mirror + length], out=pair)
        pair *= kernel[offset]
        out += pair
    return out.swapaxes(0, axis)


@op("gaussian_blur", params=GaussianBlurParams, inputs=["x"], result_nbytes=_blur_nbytes)
def gaussian_blur(params: GaussianBlurParams, progress: Progress, *, x: np.ndarray) -> np.ndarray:
    """Gaussian blur of a 2-D array; floats keep their dtype, other types become float64."""
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise ValueError(f"gaussian_blur needs a real 2-D array, got {x.dtype} shape {x.shape}")
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if x.size == 0:
        return x.astype(out_dtype)
    work_dtype = np.promote_types(out_dtype, np.float32)
    kernel = gaussian_kernel(params.sigma).astype(work_dtype)
    rows_done = _blur_along(x.astype(work_dtype), kernel, axis=0)
    progress(0.5)
    return _blur_along(rows_done, kernel, axis=1).astype(out_dtype, copy=False)


# --- mandelbrot -------------------------------------------------------------


class MandelbrotParams(_Params):
    width: int = Field(default=800, ge=1, le=8192)
    height: int = Field(default=600, ge=1, le=8192)
    max_iter: int = Field(default=100, ge=1, le=10000)
    x_min: FiniteFloat = -2.5
    x_max: FiniteFloat = 1.0
    y_min: FiniteFloat = -1.25
    y_max: FiniteFloat = 1.25

    @model_validator(mode="after")
    def _ordered_view(self) -> Self:
        if self.x_min >= self.x_max:
            raise ValueError("x_min must be less than x_max")
        if self.y_min >= self.y_max:
            raise ValueError("y_min must be less than y_max")
        return self


def _mandelbrot_nbytes(params: MandelbrotParams, _: Shapes) -> int:
    return params.width * params.height * 3


def escape_counts(c: np.ndarray, max_iter: int, progress: Progress) -> np.ndarray:
    """Iteration at which each point of `c` escapes |z| > 2, or 0 if it never does."""
    counts = np.zeros(c.size, dtype=np.int32)
    alive = np.arange(c.size)
    points = c.ravel()
    z = np.zeros_like(points)
    step = max(1, max_iter // 50)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(1, max_iter + 1):
            z = z * z + points
            escaped = z.real * z.real + z.imag * z.imag > 4.0
            counts[alive[escaped]] = i
            stay = ~escaped
            alive, z, points = alive[stay], z[stay], points[stay]
            if i % step == 0 or not alive.size:
                progress(i / max_iter)
            if not alive.size:
                break
    return counts.reshape(c.shape)


def _shade(counts: np.ndarray, max_iter: int) -> np.ndarray:
    """Log of the escape count (escapes bunch up at low counts); NaN, so black, inside the set."""
    shade = np.log1p(counts, dtype=np.float32)
    shade[counts == 0] = np.nan
    return colormaps.render(shade, "viridis", vmin=0.0, vmax=math.log1p(max_iter))


def _band_progress(progress: Progress, band: int, bands: int) -> Progress:
    return lambda fraction: progress((band + fraction) / bands)


@op(
    "mandelbrot",
    params=MandelbrotParams,
    result="image",
    queue="long",
    result_nbytes=_mandelbrot_nbytes,
)
def mandelbrot(params: MandelbrotParams, progress: Progress) -> np.ndarray:
    """The Mandelbrot set as an RGB image: escape time through a colormap, the set in black."""
    xs = np.linspace(params.x_min, params.x_max, params.width)
    ys = np.linspace(params.y_max, params.y_min, params.height)
    image = np.empty((params.height, params.width, 3), dtype=np.uint8)
    rows = max(1, _BAND_POINTS // params.width)
    bands = math.ceil(params.height / rows)
    for band in range(bands):
        top = band * rows
        c = xs[np.newaxis, :] + 1j * ys[top : top + rows, np.newaxis]
        counts = escape_counts(c, params.max_iter, _band_progress(progress, band, bands))
        image[top : top + rows] = _shade(counts, params.max_iter)
    progress(1.0)
    return image


# --- render -----------------------------------------------------------------


class RenderParams(_Params):
    cmap: str = Field(default="viridis", json_schema_extra={"enum": colormaps.colormap_names()})
    vmin: FiniteFloat | None = None
    vmax: FiniteFloat | None = None

    @field_validator("cmap")
    @classmethod
    def _known_cmap(cls, cmap: str) -> str:
        if cmap not in colormaps.COLORMAPS:
            names = ", ".join(colormaps.colormap_names())
            raise ValueError(f"unknown colormap {cmap!r}; available: {names}")
        return cmap

    @model_validator(mode="after")
    def _ordered_limits(self) -> Self:
        if self.vmin is not None and self.vmax is not None and self.vmin > self.vmax:
            raise ValueError("vmin must not exceed vmax")
        return self


def _render_nbytes(_: RenderParams, shapes: Shapes) -> int:
    return _nbytes(shapes["x"], 3)


@op("render", params=RenderParams, inputs=["x"], result="image", result_nbytes=_render_nbytes)
def render(params: RenderParams, progress: Progress, *, x: np.ndarray) -> np.ndarray:
    """A 2-D array as an RGB image through a colormap; vmin/vmax default to the data's range."""
    return colormaps.render(x, params.cmap, vmin=params.vmin, vmax=params.vmax)


# --- sleep ------------------------------------------------------------------


class SleepParams(_Params):
    seconds: float = Field(ge=0, le=3600)


@op("sleep", params=SleepParams, queue="long", cache=False)
def sleep(params: SleepParams, progress: Progress) -> np.ndarray:
    """Sleep for `seconds`, reporting progress; for tests and demos."""
    start = time.monotonic()
    deadline = start + params.seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(_SLEEP_STEP, left))
        progress(_elapsed_fraction(start, params.seconds))
    progress(1.0)
    return np.array(params.seconds, dtype=np.float64)


def _elapsed_fraction(start: float, seconds: float) -> float:
    return min(1.0, (time.monotonic() - start) / seconds)
