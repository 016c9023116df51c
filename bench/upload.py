"""4. Upload: a large `.npy` through `POST /uploads`, against the naive way and a plain sink."""

from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from arrayq.storage import codecs
from bench import curl
from bench.config import MIB, Plan
from bench.memory import PeakWatch
from bench.report import Section, Table, Target, ratio, spread
from bench.servers import Server, start_compare_app
from bench.timing import samples
from tests.support.service import Service

NPY = "application/x-npy"
MEMORY_LIMIT_MB = 100.0
_FILL_BLOCK = 16 * MIB


@dataclass(frozen=True)
class Way:
    key: str
    name: str
    url: str
    pid: int


def run(plan: Plan, workdir: Path, local: Service) -> Section:
    section = Section(
        "4. Upload",
        "A float64 `.npy` file sent by curl (`--upload-file`, streamed) as the body of a "
        "POST. The naive FastAPI endpoint does `np.load(io.BytesIO(await request.body()))` "
        "and `np.save`; the reference is the plainest ASGI upload, `request.stream()` "
        "written to a file unparsed, under the same uvicorn. arrayq's `POST /uploads` "
        "checks the header and streams the body to local-folder storage. Memory is the "
        "receiving process's peak RSS growth, the largest over the runs.",
    )
    absent = _unavailable(local)
    if absent:
        section.notes.append(f"`POST /uploads` is not available: {absent}. Not measured.")
        section.targets.append(Target("API peak RSS growth", "< 100 MB", "not available", None))
        return section
    source = _npy_file(workdir / "upload-source.npy", plan.upload_bytes)
    sink_root = workdir / "upload-sink"
    sink_root.mkdir()
    compare = start_compare_app(sink_root, workdir)
    try:
        ways = _ways(local, compare)
        measured = _measure(ways, source, plan.upload_repeat)
    finally:
        compare.stop()
    section.tables.append(_table(ways, measured, source.stat().st_size))
    growth = measured["arrayq"].growth_mb
    section.targets.append(
        Target(
            f"API peak RSS growth, {source.stat().st_size / MIB:,.0f} MiB upload",
            f"< {MEMORY_LIMIT_MB:.0f} MB",
            f"{growth:.1f} MB",
            growth < MEMORY_LIMIT_MB,
        )
    )
    return section


def _unavailable(service: Service) -> str:
    """Why `POST /uploads` cannot be measured, or "" when it answers."""
    body = b"".join(bytes(chunk) for chunk in codecs.npy_chunks(np.zeros(4)))
    with service.client() as http:
        try:
            response = http.post("/uploads", content=body, headers={"Content-Type": NPY})
        except httpx.HTTPError as exc:
            return f"the request failed: {exc}"
    if response.status_code in (404, 405):
        return f"the API answers {response.status_code} (the route is missing)"
    if response.status_code != 201:
        return f"a small upload got {response.status_code}: {response.text[:200]}"
    return ""


def _npy_file(path: Path, nbytes: int) -> Path:
    """A float64 `.npy` of about `nbytes` of random bits, written without holding it whole."""
    count = nbytes // 8
    block = np.random.default_rng(4).bytes(_FILL_BLOCK)
    with path.open("wb") as target:
        target.write(codecs.npy_header(np.broadcast_to(np.float64(0), (count,))))
        remaining = count * 8
        while remaining:
            remaining -= target.write(block[: min(remaining, len(block))])
    return path


def _ways(local: Service, compare: Server) -> list[Way]:
    return [
        Way("sink", "reference: request.stream() to a file", f"{compare.url}/sink/up.npy",
            compare.pid),
        Way("naive", "naive: await request.body() + np.load + np.save",
            f"{compare.url}/upload/up.npy", compare.pid),
        Way("arrayq", "arrayq: POST /uploads (local storage)", f"{local.url}/uploads",
            local.api.pid),
    ]  # fmt: skip


@dataclass
class Measured:
    rates: list[float] = field(default_factory=list)  # MB/s
    growth_mb: float = 0.0  # the largest peak RSS growth


def _measure(ways: list[Way], source: Path, repeat: int) -> dict[str, Measured]:
    """Each way's upload rates and memory growth, the ways taking turns."""
    results = {way.key: Measured() for way in ways}
    size = source.stat().st_size
    for _ in range(repeat):
        for way in ways:
            with PeakWatch(way.pid) as watch:
                transfer = curl.upload(way.url, source, content_type=NPY)
            if transfer.status != 201 or transfer.uploaded != size:
                raise RuntimeError(f"{way.name}: {transfer}")
            results[way.key].rates.append(transfer.rate_mb)
            results[way.key].growth_mb = max(results[way.key].growth_mb, watch.growth_mb)
    return results


def _table(ways: list[Way], measured: dict[str, Measured], size: int) -> Table:
    table = Table(["size", "way", "MB/s median (min-max)", "vs reference", "peak RSS growth MB"])
    reference = samples(measured["sink"].rates).median
    for way in ways:
        rates = samples(measured[way.key].rates)
        table.add(
            f"{size / MIB:,.0f} MiB",
            way.name,
            spread(rates),
            ratio(rates.median, reference),
            f"{measured[way.key].growth_mb:.1f}",
        )
    return table
