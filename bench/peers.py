"""9. Against the peers a user would pick instead: a FastAPI + Celery template, RQ
and arq, on the same machine in the same run, taking turns one job each.

arrayq runs in this process through its Python client; each peer's client runs in
the peers' venv as a driver (bench/peer_apps/driver.py) that times its own jobs."""

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from arrayq import Client
from bench.config import Plan
from bench.peer_apps import jobs
from bench.peer_procs import PEERS, PEERS_VENV, Peer, peers_python, running_peers
from bench.report import Section, Table, ratio
from bench.services import local_result_file
from bench.timing import Samples, take_turns
from tests.support.service import Service

TITLE = "9. Against the peers"
WORKERS = 2
WARMUP_ROUNDS = 3
FLOATS = jobs.FLOATS
KINDS = {"noop": "no-op job", "floats": "1e6 float64 result"}
NAMES = {
    "arrayq": "arrayq (Python client)",
    "template": "FastAPI + Celery template",
    "rq": "RQ",
    "arq": "arq",
}
INTRO = (
    "The same jobs through arrayq and through the peers a user would pick instead, each "
    f"with {WORKERS} worker processes, taking turns one job each per round after "
    f"{WARMUP_ROUNDS} warm-up rounds (1 in the quick mode): a no-op, and a job whose result is "
    f"{FLOATS:,} standard-normal float64s, fetched by the client as a NumPy array. "
    "Each time is submit -> result in the client's hands, measured where the client "
    "runs. **arrayq**: `Client.submit(op, wait=60).result()`, the Python client: one "
    "`POST /jobs` with `Prefer: wait`, then `GET /jobs/{id}/result` (inline JSON for "
    "the 0-d no-op result, the `.npy` file for the 1e6 floats); the `noop` op and the "
    "`random` op without a seed (neither is cached). **FastAPI + Celery template**: "
    "`POST /tasks` calls `task.delay()`, `GET /tasks/{id}` answers `AsyncResult`'s "
    "status and result with `JSONResponse`; the client polls it every 2 ms; Celery's "
    "Redis result backend, JSON serializer (the task returns `.tolist()`), Celery's "
    "defaults otherwise; one uvicorn process (uvloop, httptools) and prefork workers "
    "of concurrency 1, as arrayq's. **RQ**: `Queue.enqueue`, then "
    "`job.latest_result(timeout=...)`, which blocks on the job's results stream; "
    "RQ's default worker, which forks a work horse for each job. **arq**: "
    "`enqueue_job`, then `job.result(poll_delay=0.002)`; its workers' `poll_delay` "
    "is set to the same 2 ms (arq's default, 0.5 s, would add 250 ms to the mean), "
    "`max_jobs` is arq's default of 10. RQ and arq pickle results. The peers run in "
    "their own venv (bench/.peers-venv: arq needs redis-py < 6, which also holds "
    "Celery at 5.6) on their own fresh Redis server (one database each); arrayq on "
    "the bench's service."
)


def run(plan: Plan, workdir: Path, service: Service) -> Section:
    section = Section(TITLE, INTRO)
    if peers_python() is None:
        section.notes.append(
            f"Skipped: there is no peers venv ({PEERS_VENV}); "
            "`make bench-peers-venv` makes it (`make bench` does)."
        )
        return section
    with running_peers(workdir, WORKERS) as peers, Client(service.url) as client:
        versions = peers["rq"].ask("versions")
        warmup = 1 if plan.quick else WARMUP_ROUNDS
        latency = {
            kind: _latency(client, peers, kind, count, warmup)
            for kind, count in _sequential(plan).items()
        }
        drains = {
            kind: _drains(client, service, peers, kind, count)
            for kind, count in _queued(plan).items()
            if count
        }
        fidelity = {"arrayq": _arrayq_fidelity(client, service)}
        fidelity.update({name: peers[name].ask("fidelity") for name in PEERS})
    section.tables += [
        _latency_table(latency, _sequential(plan)),
        *(_drain_table(kind, _queued(plan)[kind], rates) for kind, rates in drains.items()),
        _fidelity_table(fidelity),
    ]
    section.notes += [
        "Drain: the jobs are submitted with no worker running (the 'submit rate' is that "
        "one client's), then the workers start; the rate is (n - 1) / (last finish - "
        "first finish) by each one's own record of when a job finished (arrayq's "
        "`finished_at`, Celery's `date_done`, RQ's `ended_at`, arq's `finish_time`), so "
        "worker start-up is not counted.",
        "The template's API runs with Python's cyclic garbage collector off "
        "(`gc.disable()` in bench/peer_apps/template.py). As written it wedged one of its "
        "threads within a few dozen jobs, and the client's request with it: py-spy showed "
        "an `AsyncResult.__del__`, run by the collector, inside another one's "
        "`PubSub.unsubscribe` on the same connection of Celery's Redis result backend "
        "(Celery's open PR #10326 is about this re-entry).",
        "Peers' packages: " + ", ".join(f"{name} {v}" for name, v in versions.items()) + ".",
    ]
    return section


def _sequential(plan: Plan) -> dict[str, int]:
    return {"noop": plan.peer_sequential_noops, "floats": plan.peer_sequential_floats}


def _queued(plan: Plan) -> dict[str, int]:
    return {"noop": plan.peer_queued_noops, "floats": plan.peer_queued_floats}


# latency


def _latency(
    client: Client, peers: dict[str, Peer], kind: str, count: int, warmup: int
) -> dict[str, Samples]:
    ways: dict[str, Callable[[], float]] = {"arrayq": lambda: _arrayq_job(client, kind)}
    for name, peer in peers.items():
        ways[name] = lambda peer=peer: peer.ask("time", kind=kind)["seconds"]
    return take_turns(ways, count, warmup)


def _arrayq_job(client: Client, kind: str) -> float:
    start = time.perf_counter()
    result = _arrayq_submit(client, kind).result()
    seconds = time.perf_counter() - start
    if kind == "floats" and not (isinstance(result, np.ndarray) and result.size == FLOATS):
        raise RuntimeError(f"expected {FLOATS} floats, got {type(result).__name__}")
    return seconds


def _arrayq_submit(client: Client, kind: str, wait: float | None = 60) -> Any:
    if kind == "floats":
        return client.submit("random", {"shape": [FLOATS]}, wait=wait)
    return client.submit("noop", wait=wait)


# drain


def _drains(
    client: Client, service: Service, peers: dict[str, Peer], kind: str, count: int
) -> dict[str, tuple[float, float]]:
    """(drain jobs/s, submit jobs/s) of each way, one way after the other."""
    rates = {"arrayq": _arrayq_drain(client, service, kind, count)}
    for name, peer in peers.items():
        peer.stop_workers()
        submitted = peer.ask("queue", count=count, kind=kind)["seconds"]
        peer.start_workers()
        finished = peer.ask("drained")["finished"]
        rates[name] = (_rate(finished), count / submitted)
    return rates


def _arrayq_drain(client: Client, service: Service, kind: str, count: int) -> tuple[float, float]:
    for worker in service.workers:
        worker.stop()
    service.workers.clear()
    start = time.perf_counter()
    jobs = [_arrayq_submit(client, kind, wait=None) for _ in range(count)]
    submitted = time.perf_counter() - start
    for _ in range(WORKERS):
        service.start_worker()
    finished = [_epoch(job.wait(timeout=600).document["finished_at"]) for job in jobs]
    for job in jobs:
        job.delete()
    return _rate(finished), count / submitted


def _rate(finished: list[float]) -> float:
    finished = sorted(finished)
    return (len(finished) - 1) / (finished[-1] - finished[0])


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# fidelity


def _arrayq_fidelity(client: Client, service: Service) -> dict[str, Any]:
    cases = {}
    for name, (kind, x) in jobs.CASES.items():
        inputs = {"x": x} if x is not None else {}
        try:
            got = np.asarray(client.submit(f"bench_{kind}", wait=60, **inputs).result())
        except Exception as error:
            cases[name] = jobs.failed(error)
            continue
        cases[name] = jobs.compare(jobs.nan32() if x is None else x, got)
    job = client.submit("bench_nan32", wait=60)
    head = local_result_file(service, job.id).read_bytes()[:8]
    stored = f"a .npy file (format {head[6]}.{head[7]}) in the object store"
    return {"cases": cases, "stored": stored if head[:6] == b"\x93NUMPY" else repr(head)}


# report


def _latency_table(latency: dict[str, dict[str, Samples]], counts: dict[str, int]) -> Table:
    table = Table(["submit -> result as an array", "p50 ms", "p99 ms", "p50 vs arrayq",
                   "p99 vs arrayq"])  # fmt: skip
    for kind, ways in latency.items():
        base = ways["arrayq"]
        for name, values in ways.items():
            table.add(
                f"{KINDS[kind]}: {NAMES[name]} ({counts[kind]} sequential)",
                _ms(values.median),
                _ms(values.percentile(0.99)),
                ratio(values.median, base.median),
                ratio(values.percentile(0.99), base.percentile(0.99)),
            )
    return table


def _drain_table(kind: str, count: int, rates: dict[str, tuple[float, float]]) -> Table:
    table = Table([f"drain of {count:,} {KINDS[kind]}s, {WORKERS} workers", "jobs/s",
                   "vs arrayq", "submit rate jobs/s"])  # fmt: skip
    base = rates["arrayq"][0]
    for name, (drain, submitted) in rates.items():
        table.add(NAMES[name], f"{drain:,.1f}", ratio(drain, base), f"{submitted:,.0f}")
    return table


def _fidelity_table(fidelity: dict[str, dict[str, Any]]) -> Table:
    table = Table(["what each loses", *jobs.CASES, "the result as stored"])
    for name, measured in fidelity.items():
        cells = [_case_cell(measured["cases"][case]) for case in jobs.CASES]
        table.add(NAMES[name], *cells, measured["stored"])
    return table


def _case_cell(case: dict[str, str]) -> str:
    if case["dtype"] == "-":
        return case["nan"]
    nan = "" if case["nan"] == "(none sent)" else f", NaN {case['nan']}"
    return f"{case['dtype']}{nan}, values equal: {case['equal']}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"
