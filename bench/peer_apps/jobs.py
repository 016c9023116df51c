"""The work of every peer's jobs (the same NumPy calls as arrayq's ops), and the
arrays sent through each to see what comes back. NumPy only: arrayq's bench imports
it too."""

import numpy as np

FLOATS = 1_000_000


def noop() -> None:
    """Nothing: what a job costs around its function."""


def floats(n: int = FLOATS) -> np.ndarray:
    """Standard normal float64s, as arrayq's `random` op without a seed."""
    return np.random.default_rng().standard_normal(n)


def echo(x: np.ndarray) -> np.ndarray:
    """The input as it arrived: whether its dtype and NaN survive the trip."""
    return x


def nan32() -> np.ndarray:
    """A float32 result with a NaN, made in the job (the result direction alone)."""
    return np.array([1.5, np.nan, -2.0], dtype=np.float32)


# case: (job, the array sent, or None when the job makes it)
CASES: dict[str, tuple[str, np.ndarray | None]] = {
    "float32 with NaN, sent and returned": ("echo", np.array([1.5, np.nan, -2.0], np.float32)),
    "int16, sent and returned": ("echo", np.array([1, -2, 30000], np.int16)),
    "float32 with NaN, made by the job": ("nan32", None),
}


def compare(sent: np.ndarray, got: np.ndarray) -> dict[str, str]:
    """What came back: its dtype, whether NaN stayed NaN, whether the values are equal."""
    if not np.isnan(sent.astype(float)).any():
        nan = "(none sent)"
    elif got.dtype.kind == "f" and np.array_equal(np.isnan(got), np.isnan(sent)):
        nan = "kept"
    else:
        nan = f"lost: {got.tolist()}"
    exact = np.array_equal(got, sent, equal_nan=sent.dtype.kind == "f")
    return {"dtype": f"{sent.dtype} -> {got.dtype}", "nan": nan, "equal": str(exact)}


def failed(error: Exception) -> dict[str, str]:
    return {"dtype": "-", "nan": f"error: {type(error).__name__}: {str(error)[:90]}"}
