"""User ops loaded through ARRAYQ_OPS_MODULES in the integration tests."""

import numpy as np
from pydantic import BaseModel

from worker.ops import op


class ScaleParams(BaseModel):
    factor: float = 2.0


@op("scale", params=ScaleParams, inputs=["x"])
def scale(params: ScaleParams, progress, x: np.ndarray) -> np.ndarray:
    """Multiply an array by a factor."""
    progress(0.5)
    return x * params.factor


class FailParams(BaseModel):
    message: str = "boom"


@op("fail", params=FailParams)
def fail(params: FailParams, progress) -> np.ndarray:
    """Always raise, with the given message."""
    raise RuntimeError(params.message)


@op("identity", inputs=["x"])
def identity(params: BaseModel, progress, x: np.ndarray) -> np.ndarray:
    """Return the input unchanged (for round-trip tests)."""
    return x
