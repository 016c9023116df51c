"""Ops for the benchmarks, loaded by the workers through ARRAYQ_OPS_MODULES=bench.ops."""

import numpy as np
from pydantic import BaseModel

from arrayq.worker.ops import op


@op("noop", cache=False)
def noop(params: BaseModel, progress) -> np.ndarray:
    """Do nothing: a 0-d result, to measure what a job costs around its op."""
    return np.zeros((), dtype=np.uint8)


@op("bench_inc", inputs=["x"])
def bench_inc(params: BaseModel, progress, x: np.ndarray) -> np.ndarray:
    """x + 1: a cacheable job, for the cache hit against miss figures."""
    return x + 1


@op("bench_echo", inputs=["x"], cache=False)
def bench_echo(params: BaseModel, progress, x: np.ndarray) -> np.ndarray:
    """The input as it arrived: whether its dtype and NaN survive the trip (section 9)."""
    return x


@op("bench_nan32", cache=False)
def bench_nan32(params: BaseModel, progress) -> np.ndarray:
    """A float32 result with a NaN, made in the job (section 9)."""
    return np.array([1.5, np.nan, -2.0], dtype=np.float32)
