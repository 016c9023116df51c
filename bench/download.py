"""2. Result download: `.npy` results over loopback, naive servers vs arrayq vs nginx."""

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import curl
from bench.config import MIB, Plan
from bench.memory import PeakWatch
from bench.report import Section, Table, Target, ratio, spread
from bench.servers import Server, start_compare_app, start_nginx
from bench.services import delete_job, local_result_file, random_result, running_service
from bench.timing import Samples, samples
from tests.support.nginx import ACCEL_PREFIX, Front, start_api, start_front
from tests.support.seaweed import seaweed_s3
from tests.support.service import Service

FILE_RESPONSE_SHARE = 0.90
MEMORY_LIMIT_MB = 100.0
NPY_QUERY = "?format=npy"
NGINX_WAYS = {"nginx": True, "nginx_rw": False}  # way key -> sendfile
ACCEL_NAMES = {
    "accel": "arrayq behind nginx: X-Accel-Redirect, sendfile",
    "accel_rw": "arrayq behind nginx: X-Accel-Redirect, read/write",
}
NGINX_NAMES = {
    "nginx": "reference: nginx sendfile",
    "nginx_rw": "reference: nginx read/write, 4 MiB buffers",
}


@dataclass(frozen=True)
class Way:
    key: str
    name: str
    url: str
    pid: int | None  # the server whose memory is watched
    follow_redirects: bool = False
    capped: bool = False


@dataclass
class Servers:
    local: Service
    s3: Service
    nginx: dict[str, Server]  # way key -> server; empty without nginx
    compare: Server
    served: Path  # what nginx and the compare app serve
    accel: dict[str, Front]  # way key -> nginx in front of an API with the accel prefix
    accel_api_pid: int | None


@dataclass
class Measured:
    rates: Samples
    growth_mb: float | None
    partial: str = ""


def run(plan: Plan, workdir: Path, local: Service) -> Section:
    section = Section(
        "2. Result download",
        "A float64 `random` result, downloaded by curl over loopback into /dev/null; MB/s "
        "is 10^6 bytes of the `.npy` file per second. The naive servers are a FastAPI app "
        "under uvicorn (as `arrayq api` runs) answering `Response(content=path.read_bytes())` "
        "and `StreamingResponse(io.BytesIO(...))`. nginx serves the very same file (a hard "
        "link to arrayq's result) twice: with sendfile, and with sendfile off through 4 MiB "
        "buffers (faster than sendfile on this VM's loopback); the faster of the two is the "
        "physical reference ('vs best nginx'). 'behind nginx' is deploy/nginx.conf's layout: "
        "nginx proxies to a second API process of the same service started with "
        "`ARRAYQ_ACCEL_REDIRECT_PREFIX`, which checks the job and answers `X-Accel-Redirect`, "
        "and nginx sends the file from its internal location. 'S3 direct' "
        "is SeaweedFS answering the presigned URL itself. Memory is the growth of the "
        "serving process's peak RSS (VmHWM, reset before each run) over its RSS before, "
        "the largest over the runs.",
    )
    table = Table(
        [
            "size",
            "way",
            "MB/s median (min-max)",
            "vs best nginx",
            "vs S3 direct",
            "peak RSS growth MB",
        ]
    )
    with _servers(workdir, local) as servers:
        if not servers.nginx:
            section.notes.append("nginx is not installed: no physical reference.")
        for nbytes, repeat in plan.download_runs:
            measured = _measure_size(servers, nbytes, repeat, plan.stream_cap_seconds)
            _add_rows(table, nbytes, measured)
            section.targets += _targets(nbytes, measured)
            section.notes += [
                f"{_size(nbytes)} {name}: {m.partial}" for name, m in measured.items() if m.partial
            ]
    section.tables.append(table)
    return section


@contextmanager
def _servers(workdir: Path, local: Service) -> Iterator[Servers]:
    served = workdir / "served"
    served.mkdir(parents=True)
    with ExitStack() as stack:
        s3_server = stack.enter_context(seaweed_s3(workdir / "s3"))
        s3 = stack.enter_context(
            running_service(workdir / "s3-api", storage_url=s3_server.url("bench"))
        )
        nginx = {}
        for key, sendfile in NGINX_WAYS.items():
            server = start_nginx(served, workdir / key, sendfile=sendfile)
            if server is not None:
                stack.callback(server.stop)
                nginx[key] = server
        compare = start_compare_app(served, workdir)
        stack.callback(compare.stop)
        accel, accel_pid = _accel_fronts(stack, workdir, local) if nginx else ({}, None)
        yield Servers(local, s3, nginx, compare, served, accel, accel_pid)


def _accel_fronts(stack: ExitStack, workdir: Path, local: Service) -> tuple[dict[str, Front], int]:
    """A second API of the local service with ARRAYQ_ACCEL_REDIRECT_PREFIX, behind nginx
    with sendfile and with read/write (deploy/nginx.conf's layout)."""
    api = start_api(
        local, workdir / "accel-api.log", {"ARRAYQ_ACCEL_REDIRECT_PREFIX": ACCEL_PREFIX}
    )
    stack.callback(api.stop)
    storage = Path(local.storage_url.removeprefix("file://"))
    fronts = {}
    for key, sendfile in (("accel", True), ("accel_rw", False)):
        front = start_front(workdir / key, api.url, storage, sendfile=sendfile)
        if front is not None:
            stack.callback(front.stop)
            fronts[key] = front
    return fronts, api.process.pid


def _measure_size(
    servers: Servers, nbytes: int, repeat: int, cap_seconds: float
) -> dict[str, Measured]:
    local_job = random_result(servers.local, nbytes)
    s3_job = random_result(servers.s3, nbytes)
    served = servers.served / f"{local_job}.npy"
    os.link(local_result_file(servers.local, local_job), served)
    try:
        ways = _ways(servers, local_job, s3_job, served.name)
        size = served.stat().st_size
        return _measure(ways, size, repeat, cap_seconds)
    finally:
        served.unlink()
        delete_job(servers.local, local_job)
        delete_job(servers.s3, s3_job)


def _ways(servers: Servers, local_job: str, s3_job: str, name: str) -> list[Way]:
    local, s3, compare = servers.local, servers.s3, servers.compare
    ways = [
        Way(key, NGINX_NAMES[key], f"{server.url}/{name}", None)
        for key, server in servers.nginx.items()
    ]
    ways += [
        Way("bytes", "naive: Response(content=bytes)", f"{compare.url}/bytes/{name}", compare.pid),
        Way(
            "stream",
            "naive: StreamingResponse(BytesIO)",
            f"{compare.url}/stream/{name}",
            compare.pid,
            capped=True,
        ),
        Way(
            "file",
            "arrayq: local FileResponse",
            f"{local.url}/jobs/{local_job}/result{NPY_QUERY}",
            local.api.pid,
        ),
        *(
            Way(
                key,
                ACCEL_NAMES[key],
                f"{front.url}/jobs/{local_job}/result{NPY_QUERY}",
                servers.accel_api_pid,
            )
            for key, front in servers.accel.items()
        ),
        Way(
            "passthrough",
            "arrayq: S3 pass-through (redirect=false)",
            f"{s3.url}/jobs/{s3_job}/result{NPY_QUERY}&redirect=false",
            s3.api.pid,
        ),
        Way(
            "redirect",
            "arrayq: S3 presigned redirect (307, followed)",
            f"{s3.url}/jobs/{s3_job}/result{NPY_QUERY}",
            s3.api.pid,
            follow_redirects=True,
        ),
        Way("s3", "reference: S3 direct (presigned URL)", _presigned(s3, s3_job), None),
    ]
    return ways


def _presigned(service: Service, job_id: str) -> str:
    with service.client() as http:
        return http.get(f"/jobs/{job_id}/result/url").json()["url"]


def _measure(ways: list[Way], size: int, repeat: int, cap_seconds: float) -> dict[str, Measured]:
    """Every full-length way once to warm up, then `repeat` rounds taking turns."""
    timed = [way for way in ways if not way.capped]
    rates: dict[str, list[float]] = {way.key: [] for way in timed}
    growth: dict[str, float] = dict.fromkeys(rates, 0.0)
    for way in timed:
        _download(way, size)
    for _ in range(repeat):
        for way in timed:
            rate, grown = _download(way, size)
            rates[way.key].append(rate)
            growth[way.key] = max(growth[way.key], grown or 0.0)
    measured = {
        way.key: Measured(samples(rates[way.key]), growth[way.key] if way.pid else None)
        for way in timed
    }
    for way in ways:
        if way.capped:
            measured[way.key] = _capped(way, size, cap_seconds)
    return {way.name: measured[way.key] for way in ways}


def _download(way: Way, size: int) -> tuple[float, float | None]:
    if way.pid is None:
        transfer = curl.download(way.url, follow_redirects=way.follow_redirects)
        grown = None
    else:
        with PeakWatch(way.pid) as watch:
            transfer = curl.download(way.url, follow_redirects=way.follow_redirects)
        grown = watch.growth_mb
    if transfer.status != 200 or transfer.downloaded != size:
        raise RuntimeError(f"{way.name}: {transfer} for a file of {size} bytes")
    return transfer.rate_mb, grown


def _capped(way: Way, size: int, cap_seconds: float) -> Measured:
    """StreamingResponse(BytesIO) sends one line (~256 bytes of binary data) per thread
    hop: far too slow to wait for a whole large file, so its rate is of the first seconds."""
    assert way.pid is not None
    with PeakWatch(way.pid) as watch:
        transfer = curl.download(way.url, max_seconds=cap_seconds)
    partial = ""
    if transfer.downloaded < size:
        partial = (
            f"stopped after {transfer.seconds:.0f} s, {transfer.downloaded / MIB:.1f} MiB "
            f"of {size / MIB:.0f} MiB: the rate is of that part (one run)"
        )
    return Measured(samples([transfer.rate_mb]), watch.growth_mb, partial)


def _add_rows(table: Table, nbytes: int, measured: dict[str, Measured]) -> None:
    nginx = _best_nginx(measured)
    direct = _median(measured, "reference: S3 direct (presigned URL)")
    for name, result in measured.items():
        is_s3 = "S3" in name
        table.add(
            _size(nbytes),
            name,
            spread(result.rates),
            ratio(result.rates.median, nginx) if nginx else "-",
            ratio(result.rates.median, direct) if is_s3 and direct else "-",
            "-" if result.growth_mb is None else f"{result.growth_mb:.1f}",
        )


def _targets(nbytes: int, measured: dict[str, Measured]) -> list[Target]:
    nginx = _best_nginx(measured)
    file_rate = measured["arrayq: local FileResponse"].rates.median
    arrayq = {name: m for name, m in measured.items() if name.startswith("arrayq")}
    worst_name, worst = max(arrayq.items(), key=lambda item: item[1].growth_mb or 0.0)
    accel = [measured[name].rates.median for name in ACCEL_NAMES.values() if name in measured]
    accel_targets = [
        Target(
            f"X-Accel-Redirect behind nginx vs best nginx, {_size(nbytes)}",
            f">= {FILE_RESPONSE_SHARE:.0%}",
            f"{max(accel) / nginx:.0%}",
            max(accel) / nginx >= FILE_RESPONSE_SHARE,
        )
    ] if accel and nginx else []  # fmt: skip
    return [
        *accel_targets,
        Target(
            f"FileResponse vs best nginx, {_size(nbytes)}",
            f">= {FILE_RESPONSE_SHARE:.0%}",
            f"{file_rate / nginx:.0%}" if nginx else "no nginx",
            file_rate / nginx >= FILE_RESPONSE_SHARE if nginx else None,
        ),
        Target(
            f"API peak RSS growth, {_size(nbytes)}",
            f"< {MEMORY_LIMIT_MB:.0f} MB",
            f"{worst.growth_mb or 0.0:.1f} MB ({worst_name.removeprefix('arrayq: ')})",
            (worst.growth_mb or 0.0) < MEMORY_LIMIT_MB,
        ),
    ]


def _best_nginx(measured: dict[str, Measured]) -> float | None:
    rates = [measured[name].rates.median for name in NGINX_NAMES.values() if name in measured]
    return max(rates, default=None)


def _median(measured: dict[str, Measured], name: str) -> float | None:
    return measured[name].rates.median if name in measured else None


def _size(nbytes: int) -> str:
    return f"{nbytes / MIB:,.0f} MiB"
