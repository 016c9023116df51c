"""6. Zarr view: a large result read lazily by zarr and dask, against downloading
the `.npy` whole and loading it.

Each way runs in a fresh client process (`python -m bench.zarr_read WAY ...`),
so its peak memory is its own: the growth of its VmHWM over its RSS once the
libraries are imported.
"""

import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.config import MIB, Plan
from bench.report import Section, Table, Target, ratio, spread
from bench.services import delete_job, submit, wait_succeeded
from bench.timing import samples
from tests.support.service import REPO_ROOT, Service

ROW_ELEMENTS = 1024  # float64 rows of 8 KiB: 8 MiB chunks of 1,024 rows
SIZES = {False: (1024 * MIB, 3), True: (32 * MIB, 1)}  # quick -> (result bytes, runs)
SLICE_FRACTION = 0.01
SLICE_SPEEDUP_GOAL = 10.0
SLICE_MEMORY_SHARE = 0.05
SUM_MEMORY_SHARE = 0.25
SUM_TIME_GOAL = 2.0

WAYS = {
    "zarr_slice": "`zarr.open_array(url)[rows]`",
    "query_slice": "arrayq's own `GET /result?slice=rows&format=npy`",
    "npy_slice": "download the `.npy` whole, `np.load`, slice",
    "dask_sum": "`dask.array.from_zarr(url).sum().compute()`",
    "npy_sum": "download the `.npy` whole, `np.load(...).sum()`",
}


# Each task's ways; the last is the naive one the others are compared with.
TASKS = {
    "1% slice": ("zarr_slice", "query_slice", "npy_slice"),
    "full sum": ("dask_sum", "npy_sum"),
}


@dataclass(frozen=True)
class Run:
    seconds: float
    growth_mb: float
    value: float


def run(plan: Plan, workdir: Path, service: Service) -> Section:
    nbytes, repeat = SIZES[plan.quick]
    rows = nbytes // (ROW_ELEMENTS * 8)
    start = rows // 2
    stop = start + max(1, int(rows * SLICE_FRACTION))
    section = _section(nbytes, start, stop)
    with service.client() as http:
        job_id = submit(http, "random", {"shape": [rows, ROW_ELEMENTS], "seed": 1})
        wait_succeeded(http, job_id)
        metadata = http.get(f"/jobs/{job_id}/result.zarr/zarr.json").json()
    try:
        runs = _measure(f"{service.url}/jobs/{job_id}", start, stop, workdir, repeat)
    finally:
        delete_job(service, job_id)
    _check_agree(runs)
    section.tables.append(_table(runs))
    section.targets += _targets(runs, nbytes)
    section.notes.append(_chunk_note(metadata, start, stop))
    return section


def _section(nbytes: int, start: int, stop: int) -> Section:
    return Section(
        "6. Zarr view",
        f"A float64 `random` result of {nbytes // MIB:,} MiB ({nbytes // (ROW_ELEMENTS * 8):,} "
        f"x {ROW_ELEMENTS}) on local storage, read over loopback by a fresh client process per "
        f"run. The slice is rows {start:,}:{stop:,} (1% of the rows). Time is the client's wall "
        "clock from the first request to the value in hand (download ways write the file to "
        "disk, as a download does, then load it); memory is the client's peak RSS growth "
        "over its RSS after importing numpy, httpx, zarr and dask.",
    )


def _measure(base: str, start: int, stop: int, workdir: Path, repeat: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {way: [] for way in WAYS}
    for _ in range(repeat):
        for way in WAYS:  # in turns, so a change of load hits every way alike
            runs[way].append(_client(way, base, start, stop, workdir))
    return runs


def _client(way: str, base: str, start: int, stop: int, workdir: Path) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "bench.zarr_read", way, base, str(start), str(stop), str(workdir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"client {way} failed:\n{done.stderr[-3000:]}")
    return Run(**json.loads(done.stdout.splitlines()[-1]))


def _check_agree(runs: dict[str, list[Run]]) -> None:
    for ways in TASKS.values():
        values = [run.value for way in ways for run in runs[way]]
        if not all(math.isclose(value, values[0], rel_tol=1e-9) for value in values):
            raise AssertionError(f"the ways disagree: {dict(zip(ways, values, strict=False))}")


def _table(runs: dict[str, list[Run]]) -> Table:
    table = Table(["task", "way", "seconds median (min-max)", "vs download", "client peak MB"])
    for task, ways in TASKS.items():
        base = _median(runs[ways[-1]])
        for way in ways:
            seconds = samples([run.seconds for run in runs[way]])
            peak = max(run.growth_mb for run in runs[way])
            table.add(
                task, WAYS[way], spread(seconds, 2), ratio(seconds.median, base), f"{peak:.0f}"
            )
    return table


def _targets(runs: dict[str, list[Run]], nbytes: int) -> list[Target]:
    size = f"{nbytes // MIB:,} MiB"
    slice_speedup = _median(runs["npy_slice"]) / _median(runs["zarr_slice"])
    slice_peak = max(run.growth_mb for run in runs["zarr_slice"])
    dask_peak = max(run.growth_mb for run in runs["dask_sum"])
    npy_peak = max(run.growth_mb for run in runs["npy_sum"])
    sum_ratio = _median(runs["dask_sum"]) / _median(runs["npy_sum"])
    result_mb = nbytes / 1e6
    return [
        Target(f"1% slice, zarr vs download whole, {size}", f">= {SLICE_SPEEDUP_GOAL:.0f}x faster",
               f"{slice_speedup:.1f}x", slice_speedup >= SLICE_SPEEDUP_GOAL),
        Target(f"1% slice, zarr client peak, {size}", f"<= {SLICE_MEMORY_SHARE:.0%} of the result",
               f"{slice_peak:.0f} MB", slice_peak <= SLICE_MEMORY_SHARE * result_mb),
        Target(f"full sum, dask client peak vs np.load, {size}",
               f"<= {SUM_MEMORY_SHARE:.0%}", f"{dask_peak:.0f} vs {npy_peak:.0f} MB",
               dask_peak <= SUM_MEMORY_SHARE * npy_peak),
        Target(f"full sum, dask time vs download + np.load, {size}",
               f"<= {SUM_TIME_GOAL:.1f}x", f"{sum_ratio:.2f}x", sum_ratio <= SUM_TIME_GOAL),
    ]  # fmt: skip


def _chunk_note(metadata: dict, start: int, stop: int) -> str:
    chunk_rows, chunk_cols = metadata["chunk_grid"]["configuration"]["chunk_shape"]
    touched = (stop - 1) // chunk_rows - start // chunk_rows + 1
    chunk_mib = chunk_rows * chunk_cols * 8 / MIB
    return (
        f"The view's chunks are {chunk_rows:,} x {chunk_cols:,} ({chunk_mib:.0f} MiB); "
        f"the slice touches {touched} of them, so zarr reads {touched * chunk_mib:.0f} MiB."
    )


def _median(runs: list[Run]) -> float:
    return samples([run.seconds for run in runs]).median


# The client process


def _download(base: str, workdir: Path) -> Path:
    path = workdir / f"download-{os.getpid()}.npy"
    with (
        httpx.Client(timeout=300.0, follow_redirects=True) as http,
        http.stream("GET", f"{base}/result", params={"format": "npy"}) as response,
        path.open("wb") as file,
    ):
        response.raise_for_status()
        for piece in response.iter_bytes(4 * MIB):
            file.write(piece)
    return path


def _loaded(base: str, workdir: Path) -> np.ndarray:
    path = _download(base, workdir)
    try:
        return np.load(path, allow_pickle=False)
    finally:
        path.unlink()


def _zarr_slice(base: str, start: int, stop: int, workdir: Path) -> float:
    import zarr

    return float(zarr.open_array(f"{base}/result.zarr", mode="r")[start:stop].sum())


def _query_slice(base: str, start: int, stop: int, workdir: Path) -> float:
    params = {"slice": f"{start}:{stop}", "format": "npy"}
    response = httpx.get(f"{base}/result", params=params, timeout=300.0)
    response.raise_for_status()
    return float(np.load(io.BytesIO(response.content), allow_pickle=False).sum())


def _npy_slice(base: str, start: int, stop: int, workdir: Path) -> float:
    return float(_loaded(base, workdir)[start:stop].sum())


def _dask_sum(base: str, start: int, stop: int, workdir: Path) -> float:
    import dask.array as da

    return float(da.from_zarr(f"{base}/result.zarr").sum().compute())


def _npy_sum(base: str, start: int, stop: int, workdir: Path) -> float:
    return float(_loaded(base, workdir).sum())


CLIENT_WAYS: dict[str, Callable[[str, int, int, Path], float]] = {
    "zarr_slice": _zarr_slice,
    "query_slice": _query_slice,
    "npy_slice": _npy_slice,
    "dask_sum": _dask_sum,
    "npy_sum": _npy_sum,
}


def client_main(argv: list[str]) -> None:
    # Imported before the timing and the memory baseline, as a long-lived client has them.
    import aiohttp  # noqa: F401
    import dask.array  # noqa: F401
    import fsspec.implementations.http  # noqa: F401
    import zarr
    import zarr.storage  # noqa: F401

    from bench.memory import PeakWatch

    way, base, start, stop, workdir = argv
    with PeakWatch(os.getpid()) as watch:
        began = time.perf_counter()
        value = CLIENT_WAYS[way](base, int(start), int(stop), Path(workdir))
        seconds = time.perf_counter() - began
    print(json.dumps({"seconds": seconds, "growth_mb": watch.growth_mb, "value": value}))


if __name__ == "__main__":
    client_main(sys.argv[1:])
