"""User ops loaded through ARRAYQ_OPS_MODULES in the integration tests."""

import os
import signal
import time

import numpy as np
from pydantic import BaseModel

from arrayq.worker.ops import op


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


# Fault-injection ops for tests/integration/test_faults_*.py.


class SecondsParams(BaseModel):
    seconds: float = 30.0


@op("crash")
def crash(params: BaseModel, progress) -> np.ndarray:
    """Kill the worker process that runs it, every time."""
    os._exit(1)


@op("spin", params=SecondsParams, soft_time_limit=1.0)
def spin(params: SecondsParams, progress) -> np.ndarray:
    """Busy-loop in pure Python, never calling `progress`; soft limit 1 s."""
    deadline = time.monotonic() + params.seconds
    while time.monotonic() < deadline:
        pass
    return np.array(params.seconds)


@op("stuck", params=SecondsParams, soft_time_limit=1.0, hard_time_limit=3.0)
def stuck(params: SecondsParams, progress) -> np.ndarray:
    """One long C call deaf to the soft limit's signal (as a C extension that
    never returns to Python is); only the hard limit (3 s) can stop it."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        time.sleep(params.seconds)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return np.array(params.seconds)


@op("pid", cache=False)  # its answer is the process, not the input
def pid(params: BaseModel, progress) -> np.ndarray:
    """The process id of the pool process that runs it."""
    return np.array(os.getpid(), dtype=np.int64)


class HogParams(BaseModel):
    megabytes: int = 200


@op("hog", params=HogParams, cache=False)
def hog(params: HogParams, progress) -> np.ndarray:
    """Touch `megabytes` of memory; return the pid of the pool process."""
    block = np.ones(params.megabytes << 20, dtype=np.uint8)
    assert int(block[::4096].sum()) == len(block[::4096])
    return np.array(os.getpid(), dtype=np.int64)


class BytesParams(BaseModel):
    nbytes: int = 1 << 20


@op("zeros", params=BytesParams)
def zeros(params: BytesParams, progress) -> np.ndarray:
    """`nbytes` zero bytes, with no size bound declared up front."""
    return np.zeros(params.nbytes, dtype=np.uint8)


class TallyParams(BaseModel):
    token: int


@op("tally", params=TallyParams)
def tally(params: TallyParams, progress) -> np.ndarray:
    """Append the token to $ARRAYQ_TEST_TALLY_FILE (one line per completed run)."""
    path = os.environ.get("ARRAYQ_TEST_TALLY_FILE")
    if path:
        with open(path, "a") as out:
            out.write(f"{params.token}\n")
    return np.array(params.token, dtype=np.int64)


# Result cache tests: ops that count their own runs in $ARRAYQ_TEST_RUNS_DIR.


class CountParams(BaseModel):
    tag: str = ""


def _count_run(name: str, tag: str) -> None:
    folder = os.environ.get("ARRAYQ_TEST_RUNS_DIR")
    if folder:
        with open(os.path.join(folder, f"{name}-{tag}"), "a") as out:
            out.write("run\n")


@op("counted", params=CountParams, inputs=["x"])
def counted(params: CountParams, progress, x: np.ndarray) -> np.ndarray:
    """Return x + 1, counting each run under its tag."""
    _count_run("counted", params.tag)
    return x + 1


@op("counted_v2", params=CountParams, inputs=["x"], version="2")
def counted_v2(params: CountParams, progress, x: np.ndarray) -> np.ndarray:
    """`counted` at version 2."""
    _count_run("counted_v2", params.tag)
    return x + 1


@op("uncached", params=CountParams, cache=False)
def uncached(params: CountParams, progress) -> np.ndarray:
    """Never served from the cache."""
    _count_run("uncached", params.tag)
    return np.array(1)


@op(
    "versioned",
    params=CountParams,
    inputs=["x"],
    version=os.environ.get("ARRAYQ_TEST_OP_VERSION", "1"),
)
def versioned(params: CountParams, progress, x: np.ndarray) -> np.ndarray:
    """`counted` whose version the environment sets."""
    _count_run("versioned", params.tag)
    return x + 1


# Several outputs: a tuple in declared order, a dict by name, and wrong returns.


@op("minmax", inputs=["x"], outputs=["low", "high"])
def minmax(params: BaseModel, progress, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum and maximum along the first axis, as a tuple."""
    return x.min(axis=0), x.max(axis=0)


@op("split", inputs=["x"], outputs=["evens", "odds", "total"])
def split(params: BaseModel, progress, x: np.ndarray) -> dict[str, np.ndarray]:
    """Even and odd positions of a 1-D array and their sum, as a dict."""
    return {"total": np.array(x.sum()), "odds": x[1::2], "evens": x[::2]}


class WrongParams(BaseModel):
    how: str = "count"


@op("wrong_outputs", params=WrongParams, outputs=["first", "second"])
def wrong_outputs(params: WrongParams, progress) -> object:
    """Return outputs wrongly: too few, a missing name, or something not an array."""
    if params.how == "count":
        return (np.zeros(2),)
    if params.how == "missing":
        return {"first": np.zeros(2)}
    return {"first": np.zeros(2), "second": {"not": "an array"}}


# Pipelines: a slow first step, a step that fails, a step that counts its runs.


class SlowParams(BaseModel):
    seconds: float = 1.0
    n: int = 4


@op("slow_range", params=SlowParams, cache=False)
def slow_range(params: SlowParams, progress) -> np.ndarray:
    """`arange(n)` as float64 after `seconds` (reporting progress, so it can be cancelled)."""
    deadline = time.monotonic() + params.seconds
    while time.monotonic() < deadline:
        progress(0.5)
        time.sleep(0.02)
    return np.arange(params.n, dtype=np.float64)


@op("slow_random", params=SlowParams, cache=False)
def slow_random(params: SlowParams, progress) -> np.ndarray:
    """`n` random numbers (different every run) after `seconds`."""
    time.sleep(params.seconds)
    return np.random.default_rng().standard_normal(params.n)


@op("explode", inputs=["x"])
def explode(params: BaseModel, progress, x: np.ndarray) -> np.ndarray:
    """Fail whatever the input."""
    raise ValueError(f"cannot handle {x.shape}")


class StepParams(BaseModel):
    token: int
    seconds: float = 0.0


@op("counted_step", params=StepParams, inputs=["x"], cache=False)
def counted_step(params: StepParams, progress, x: np.ndarray) -> np.ndarray:
    """x + 1 after `seconds`; appends the token to $ARRAYQ_TEST_TALLY_FILE once it is done."""
    time.sleep(params.seconds)
    path = os.environ.get("ARRAYQ_TEST_TALLY_FILE")
    if path:
        with open(path, "a") as out:
            out.write(f"{params.token}\n")
    return x + 1


@op("big_ones", params=BytesParams, queue="long", cache=False)
def big_ones(params: BytesParams, progress) -> np.ndarray:
    """`nbytes` one-bytes as rows of 4096 (every page touched), on the long queue."""
    return np.ones((params.nbytes // 4096, 4096), dtype=np.uint8)


@op("peak_rss", inputs=["x"], cache=False)
def peak_rss(params: BaseModel, progress, x: np.ndarray) -> np.ndarray:
    """[peak resident kB of this process, sum of x]."""
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return np.array([peak, int(x.sum())], dtype=np.int64)
