"""Colormaps without matplotlib: 256-entry lookup tables and `render` for 2-D arrays.

Each table is the linear interpolation of 17 colors sampled at even steps from
matplotlib's own colormap data, which stays within a few levels of the original.
"""

import numpy as np

_ANCHORS: dict[str, str] = {
    "viridis": "440154 48186a 472d7b 424086 3b528b 33638d 2c728e 26828e 21908c "
    "1f9f88 27ad81 3ebc74 5cc863 82d34d aadc32 d5e21a fde725",
    "magma": "000004 0a0822 1d1147 36106b 50127c 691c81 822681 9c2e7f b6367a "
    "cf4070 e65164 f46a5c fb8861 fea571 fec287 fde0a1 fcfdbf",
    "inferno": "000004 0b0724 210c4a 3d0965 56106e 70196e 89226a a32c61 bb3654 "
    "d14545 e35932 f1721e f98c0a fcaa0f f9c932 f2e865 fcffa4",
    "plasma": "0d0887 310597 4c02a1 6600a7 7e03a8 9511a1 a92395 bc3587 cc4678 "
    "d9596a e56b5d f07f4f f89441 fdab33 fdc328 f9dd25 f0f921",
    "cividis": "00224e 002e6a 1a386f 32436d 434e6c 535a6d 61656f 6f7073 7c7c78 "
    "8b8778 9a9376 aaa073 bbad6d ccba64 ddc858 efd748 fee838",
    "gray": "000000 ffffff",
    "hot": "0b0000 350000 5f0000 880000 b20000 dc0000 ff0700 ff3100 ff5a00 "
    "ff8400 ffae00 ffd800 ffff04 ffff43 ffff82 ffffc0 ffffff",
    "coolwarm": "3b4cc0 4e68d8 6282ea 779af7 8db0fe a3c2fe b8d0f9 ccd9ed dcdcdc "
    "ebd3c6 f4c5ad f7b194 f49a7b ec7f63 de614d cb3e38 b40426",
}


def _lut(hex_colors: str) -> np.ndarray:
    anchors = np.array([list(bytes.fromhex(h)) for h in hex_colors.split()], dtype=np.uint8)
    anchors_at = np.linspace(0.0, 1.0, len(anchors))
    levels = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(levels, anchors_at, anchors[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=1)).astype(np.uint8)


COLORMAPS: dict[str, np.ndarray] = {name: _lut(colors) for name, colors in _ANCHORS.items()}
for _table in COLORMAPS.values():
    _table.flags.writeable = False


def colormap_names() -> list[str]:
    return list(COLORMAPS)


def render(
    x: np.ndarray, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map a 2-D real array to an H x W x 3 uint8 image: NaN is black, +-inf clip to the ends."""
    lut = _lookup(cmap)
    values = _as_real_2d(x)
    low, high = _limits(values, vmin, vmax)
    nan = np.isnan(values)
    image = np.take(lut, _indices(values, low, high), axis=0)
    image[nan] = 0
    return image


def _lookup(cmap: str) -> np.ndarray:
    try:
        return COLORMAPS[cmap]
    except KeyError:
        raise ValueError(
            f"unknown colormap {cmap!r}; available: {', '.join(colormap_names())}"
        ) from None


def _as_real_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"a colormap renders 2-D arrays, got {x.ndim}-D shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"a colormap renders bool, integer or float arrays, not {x.dtype}")
    # float32 is exact enough for 256 levels and twice as fast; wide ints and float64 stay wide.
    return x.astype(np.result_type(x.dtype, np.float32), copy=False)


def _limits(values: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    for name, given in (("vmin", vmin), ("vmax", vmax)):
        if given is not None and not np.isfinite(given):
            raise ValueError(f"{name} must be finite, got {given}")
    if vmin is None or vmax is None:
        finite = values[np.isfinite(values)]
        if vmin is None:
            vmin = float(finite.min()) if finite.size else 0.0
        if vmax is None:
            vmax = float(finite.max()) if finite.size else vmin
    if vmin > vmax:
        raise ValueError(f"vmin ({vmin}) must not exceed vmax ({vmax})")
    return float(vmin), float(vmax)


def _indices(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high == low:
        return np.where(values > high, 255, 0).astype(np.uint8)
    if not np.isfinite(high - low):
        values, low, high = values / 2, low / 2, high / 2
    with np.errstate(over="ignore", invalid="ignore"):
        scale = values.dtype.type(256 / (high - low))
        scaled = (values - values.dtype.type(low)) * scale
    np.clip(scaled, 0, 255, out=scaled)
    scaled[np.isnan(scaled)] = 0
    return scaled.astype(np.uint8)
