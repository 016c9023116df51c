"""Repeated measurements and their summaries."""

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Samples:
    """Measured values (seconds, or any unit the caller keeps consistent)."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile, e.g. `percentile(0.99)`."""
        ordered = sorted(self.values)
        rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
        return ordered[min(rank, len(ordered)) - 1]

    def map(self, func: Callable[[float], float]) -> "Samples":
        return Samples(tuple(func(value) for value in self.values))


def samples(values: Sequence[float]) -> Samples:
    if not values:
        raise ValueError("no samples")
    return Samples(tuple(values))


def time_calls(
    func: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> Samples:
    """Seconds of `repeat` calls of `func`, by `clock`."""
    seconds = []
    for _ in range(repeat):
        start = clock()
        func()
        seconds.append(clock() - start)
    return samples(seconds)


def time_interleaved(
    funcs: dict[str, Callable[[], object]],
    repeat: int,
    batch: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Samples]:
    """Seconds per call of each function, measured in turns (one batch of each per
    round) so that a change of load on a shared machine hits them all alike. With
    `clock=time.thread_time` it is the CPU time of this thread, which other
    processes' load does not inflate."""
    seconds: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = clock()
            for _ in range(batch):
                func()
            seconds[name].append((clock() - start) / batch)
    return {name: samples(values) for name, values in seconds.items()}


def take_turns(
    ways: dict[str, Callable[[], float]], count: int, warmup: int = 0
) -> dict[str, Samples]:
    """Each way, one call a round, `warmup` rounds unrecorded and then `count`;
    each call returns the seconds it measured itself (where its client runs)."""
    for _ in range(warmup):
        for way in ways.values():
            way()
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(count):
        for name, way in ways.items():
            seconds[name].append(way())
    return {name: samples(values) for name, values in seconds.items()}
