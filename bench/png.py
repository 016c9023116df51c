"""5. PNG: encoding a rendered image, arrayq's compression level against Pillow's default."""

import io
import time

import numpy as np
from PIL import Image

from arrayq.storage import codecs, colormaps
from arrayq.worker.builtin_ops import MandelbrotParams, mandelbrot
from bench.config import Plan
from bench.report import Section, Table, ratio, spread
from bench.timing import Samples, time_interleaved

PILLOW_DEFAULT_LEVEL = 6
SWEEP_LEVELS = (0, 1, 3, 6, 9)
ARRAYQ = "arrayq: encode_png"
NAIVE = "naive: Pillow defaults"


def run(plan: Plan) -> Section:
    side = plan.png_side
    section = Section(
        "5. PNG",
        f"{side}x{side} RGB images: a smooth 2-D field with a little noise rendered "
        "through `storage.colormaps.render` (viridis), as `?format=png` serves a numeric "
        "result, and the built-in `mandelbrot` op's image. arrayq's path is "
        f"`storage.codecs.encode_png` at `PNG_COMPRESS_LEVEL = {codecs.PNG_COMPRESS_LEVEL}`; "
        f"the naive way is Pillow's defaults (`Image.save(format='PNG')`, zlib level "
        f"{PILLOW_DEFAULT_LEVEL}). Times are CPU time of the encoding thread. The sweep "
        "shows what each level buys.",
    )
    table = Table(["image", "encoder", "ms median (min-max)", "KiB", "time vs Pillow default",
                   "size vs Pillow default"])  # fmt: skip
    sweep = Table(["image", "zlib level", "ms (one run)", "KiB", "MB/s of pixels"])
    trade: dict[str, tuple[float, float]] = {}  # image -> (time, size) vs Pillow default
    for name, image in _images(side).items():
        _check_round_trip(image)
        ways = {ARRAYQ: lambda image=image: codecs.encode_png(image),
                NAIVE: lambda image=image: _pillow_default(image)}  # fmt: skip
        timed = time_interleaved(ways, plan.png_repeat, clock=time.thread_time)
        sizes = {label: len(encode()) for label, encode in ways.items()}
        _add_comparison(table, name, timed, sizes)
        trade[name] = (
            timed[ARRAYQ].median / timed[NAIVE].median,
            sizes[ARRAYQ] / sizes[NAIVE],
        )
        for level in SWEEP_LEVELS:
            _add_level(sweep, name, image, level)
    section.tables += [table, sweep]
    section.notes.append(_why_level(trade))
    return section


def _images(side: int) -> dict[str, np.ndarray]:
    rows, columns = np.mgrid[0:side, 0:side].astype(np.float32) / side
    noise = np.random.default_rng(5).standard_normal((side, side), dtype=np.float32)
    field = np.sin(9 * rows) * np.cos(7 * columns + 3 * rows) + 0.02 * noise
    params = MandelbrotParams(width=side, height=side)
    return {
        "rendered field": colormaps.render(field, "viridis"),
        "mandelbrot": mandelbrot(params, lambda fraction: None),
    }


def _add_level(table: Table, name: str, image: np.ndarray, level: int) -> None:
    """One encode at `level`: the sweep shows the shape of the trade, not fine timings."""
    start = time.thread_time()
    size = len(codecs.encode_png(image, compress_level=level))
    seconds = time.thread_time() - start
    table.add(name, level, f"{seconds * 1e3:.0f}", f"{size / 1024:,.0f}",
              f"{image.nbytes / seconds / 1e6:.0f}")  # fmt: skip


def _pillow_default(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _add_comparison(
    table: Table, name: str, timed: dict[str, Samples], sizes: dict[str, int]
) -> None:
    default = NAIVE
    for label in (NAIVE, ARRAYQ):
        table.add(
            name,
            label,
            spread(timed[label].map(lambda s: s * 1e3), 0),
            f"{sizes[label] / 1024:,.0f}",
            ratio(timed[label].median, timed[default].median),
            ratio(sizes[label], sizes[default]),
        )


def _check_round_trip(image: np.ndarray) -> None:
    decoded = np.asarray(Image.open(io.BytesIO(codecs.encode_png(image))))
    if not np.array_equal(decoded, image):
        raise AssertionError("encode_png did not round-trip the image")


def _why_level(trade: dict[str, tuple[float, float]]) -> str:
    measured = "; ".join(
        f"{name}: {time:.0%} of the time for {size - 1:+.0%} bytes"
        for name, (time, size) in trade.items()
    )
    return (
        f"Why level {codecs.PNG_COMPRESS_LEVEL}: PNG is lossless at every level, so the "
        "choice is CPU time against bytes. A numeric result's PNG is encoded per request "
        "(colormap and limits are query parameters, so it cannot be made ahead) on the "
        "API's CPU, and loopback or LAN links move the extra bytes in less time than the "
        f"higher levels spend compressing them. Against Pillow's level {PILLOW_DEFAULT_LEVEL} "
        f"in this run: {measured}. Levels above 3 cost several times the CPU for a few "
        "percent of bytes (see the sweep)."
    )
