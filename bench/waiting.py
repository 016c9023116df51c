"""8. Waiting in one request, the result cache, and many followers on one API.

Against bare Celery in the same run: a job's submit -> final with polling and with
`Prefer: wait`, the drain rate, a cache hit against a miss, and 1,000 event
streams or long polls held by one API process (Redis connections, RSS, and the
delay from a status change to the follower seeing it).
"""

import asyncio
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import orjson
import redis
from celery import Celery

from bench.bare_celery import TASK_NAME, create_bare_celery
from bench.config import Plan
from bench.overhead import BareWorkers
from bench.report import Section, Table, Target, ratio
from bench.services import FINAL
from bench.timing import Samples, samples, take_turns
from tests.support.service import Service

POLL_LIMIT = 1.5
WAIT_LIMIT = 1.25
THROUGHPUT_SHARE = 0.90
POLL_SECONDS = 0.002
WARMUP_ROUNDS = 5
FOLLOWERS_FULL = 1_000
FOLLOWERS_QUICK = 20
BARE = "bare Celery apply_async().get()"
POLLED = "arrayq: POST, then GET /jobs/{id} every 2 ms"
WAITED = "arrayq: POST with Prefer: wait=60"


def run(plan: Plan, workdir: Path, service: Service) -> Section:
    section = Section(
        "8. Waiting in one request, the result cache, many followers",
        "The `noop` op (0-d result, never cached) on the arrayq service with 2 worker "
        "processes, against a bare Celery app on the same Redis server (database 2) with "
        "its own 2 workers and a Redis result backend, taking turns one job each per "
        "round. Cache: `bench_inc` (x + 1 of a 1,000-element float64 array, sent inline) "
        "submitted with `Prefer: wait=60`, a new array each time (miss) or one computed "
        "before (hit). Followers: one API process, the jobs queued with no worker running, "
        "every follower connected and waiting, then the workers start.",
    )
    bare_url = service.redis_url.rsplit("/", 1)[0] + "/2"
    bare = create_bare_celery(bare_url)
    workers = BareWorkers(bare, bare_url, workdir)
    try:
        workers.start()
        latency = _latency(service, bare, plan.sequential_jobs, 1 if plan.quick else WARMUP_ROUNDS)
        workers.stop()
        # the quick mode (CI) leaves the drain rates to section 3
        bare_rate = None if plan.quick else _bare_drain(bare, workers, plan.queued_jobs)
    finally:
        workers.stop()
        bare.close()
    arrayq_rate = None if plan.quick else _arrayq_drain(service, plan.queued_jobs)
    cache = _cache(service, max(plan.sequential_jobs // 2, 3))
    count = FOLLOWERS_QUICK if plan.quick else FOLLOWERS_FULL
    followers = {kind: _followers(service, count, kind) for kind in ("events", "long polls")}
    section.tables += [
        _latency_table(latency, plan.sequential_jobs),
        *(
            [_drain_table(plan.queued_jobs, arrayq_rate, bare_rate)]
            if arrayq_rate and bare_rate
            else []
        ),
        _cache_table(cache),
        _followers_table(followers),
    ]
    section.targets = _targets(latency, arrayq_rate, bare_rate, cache)
    return section


# latency


def _latency(service: Service, bare: Celery, count: int, warmup: int) -> dict[str, Samples]:
    with service.client() as http:
        ways = {
            BARE: lambda: _timed(lambda: bare.signature(TASK_NAME).apply_async().get(timeout=30)),
            POLLED: lambda: _timed(lambda: _polled(http)),
            WAITED: lambda: _timed(lambda: _waited(http, {"op": "noop"})),
        }
        return take_turns(ways, count, warmup)


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _polled(http: httpx.Client) -> None:
    job_id = _post(http, {"op": "noop"}).json()["id"]
    while http.get(f"/jobs/{job_id}").json()["status"] not in FINAL:
        time.sleep(POLL_SECONDS)


def _waited(http: httpx.Client, body: dict) -> httpx.Response:
    response = _post(http, body, {"Prefer": "wait=60"})
    if response.status_code != 201:
        raise RuntimeError(f"Prefer: wait answered {response.status_code}: {response.text}")
    return response


def _post(http: httpx.Client, body: dict, headers: dict | None = None) -> httpx.Response:
    response = http.post("/jobs", json=body, headers=headers)
    if response.status_code not in (201, 202):
        raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text}")
    return response


# drain rate


def _bare_drain(bare: Celery, workers: BareWorkers, count: int) -> float:
    signature = bare.signature(TASK_NAME)
    results = [signature.apply_async() for _ in range(count)]
    workers.start()
    finished = sorted(result.get(timeout=600) for result in results)
    return (count - 1) / (finished[-1] - finished[0])


def _arrayq_drain(service: Service, count: int) -> float:
    for worker in service.workers:
        worker.stop()
    service.workers.clear()
    with service.client() as http:
        ids = [_post(http, {"op": "noop"}).json()["id"] for _ in range(count)]
        for _ in range(2):
            service.start_worker()
        documents = [_final(http, job_id) for job_id in ids]
    finished = sorted(_epoch(document["finished_at"]) for document in documents)
    return (count - 1) / (finished[-1] - finished[0])


def _final(http: httpx.Client, job_id: str) -> dict:
    document = http.get(f"/jobs/{job_id}", headers={"Prefer": "wait=60"}).json()
    if document["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} {document['status']}")
    return document


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# cache


def _cache(service: Service, count: int) -> dict[str, Samples]:
    rng = np.random.default_rng()
    with service.client() as http:

        def body(x: np.ndarray) -> dict:
            return {"op": "bench_inc", "inputs": {"x": _array(x)}}

        known = rng.standard_normal(1000)
        _waited(http, body(known))
        ways = {
            "miss (new input, computed)": lambda: _timed(
                lambda: _waited(http, body(rng.standard_normal(1000)))
            ),
            "hit (same input, served from the cache)": lambda: _timed(
                lambda: _hit(http, body(known))
            ),
        }
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(count):
            for name, way in ways.items():
                seconds[name].append(way())
    return {name: samples(values) for name, values in seconds.items()}


def _hit(http: httpx.Client, body: dict) -> None:
    if not _waited(http, body).json()["cached_from"]:
        raise RuntimeError("expected a cache hit")


def _array(x: np.ndarray) -> dict:
    return {"dtype": "float64", "shape": list(x.shape), "data": x.tolist()}


# followers


def _followers(service: Service, count: int, kind: str) -> dict[str, float]:
    for worker in service.workers:
        worker.stop()
    service.workers.clear()
    with service.client() as http:
        ids = [_post(http, {"op": "noop"}).json()["id"] for _ in range(count)]
    rss_before = _rss_mib(service.api.pid)
    before = _api_connections(service.redis_url)
    measured = asyncio.run(_follow_all(service, ids, kind))
    measured["connections before"] = before
    measured["rss before MiB"] = rss_before
    return measured


async def _follow_all(service: Service, ids: list[str], kind: str) -> dict[str, float]:
    limits = httpx.Limits(max_connections=len(ids) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=service.url, timeout=120, limits=limits) as client:
        ready = asyncio.Semaphore(0)
        follow = _stream if kind == "events" else _long_poll
        tasks = [asyncio.ensure_future(follow(client, job_id, ready)) for job_id in ids]
        for _ in ids:
            await asyncio.wait_for(ready.acquire(), 120)
        await asyncio.sleep(0.5)
        during = _api_connections(service.redis_url)
        rss = _rss_mib(service.api.pid)
        for _ in range(2):
            service.start_worker()
        delays = await asyncio.gather(*tasks)
    return {
        "followers": len(ids),
        "connections during": during,
        "rss during MiB": rss,
        "p50 delay ms": samples(delays).median * 1e3,
        "p99 delay ms": samples(delays).percentile(0.99) * 1e3,
    }


async def _stream(client: httpx.AsyncClient, job_id: str, ready: asyncio.Semaphore) -> float:
    """Seconds from the job's `finished_at` to its final event arriving here."""
    async with client.stream("GET", f"/jobs/{job_id}/events") as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            document = orjson.loads(line[5:])
            if document["status"] == "queued":
                ready.release()
            elif document["status"] in FINAL:
                return time.time() - _epoch(document["finished_at"])
    raise RuntimeError(f"the stream of {job_id} ended before the job did")


async def _long_poll(client: httpx.AsyncClient, job_id: str, ready: asyncio.Semaphore) -> float:
    request = client.get(f"/jobs/{job_id}", headers={"Prefer": "wait=60"})
    task = asyncio.ensure_future(request)
    await asyncio.sleep(0.05)  # sent and waiting in the API by now
    ready.release()
    document = (await task).json()
    if document["status"] not in FINAL:
        raise RuntimeError(f"long poll of {job_id} ended with {document['status']}")
    return time.time() - _epoch(document["finished_at"])


def _api_connections(url: str) -> int:
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return sum(1 for entry in client.client_list() if entry["name"].startswith("arrayq-api"))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# report


def _latency_table(latency: dict[str, Samples], count: int) -> Table:
    table = Table(["submit -> final", "p50 ms", "p99 ms", "p50 vs bare Celery"])
    celery = latency[BARE].median
    for name, values in latency.items():
        table.add(
            f"{name} ({count} sequential)",
            f"{values.median * 1e3:.2f}",
            f"{values.percentile(0.99) * 1e3:.2f}",
            ratio(values.median, celery),
        )
    return table


def _drain_table(count: int, arrayq_rate: float, bare_rate: float) -> Table:
    table = Table(["drain", "jobs/s", "vs bare Celery"])
    table.add(
        f"bare Celery empty tasks ({count:,} queued, 2 workers)", f"{bare_rate:,.0f}", "1.00x"
    )
    table.add(
        f"arrayq noop jobs ({count:,} queued, 2 workers)",
        f"{arrayq_rate:,.0f}",
        ratio(arrayq_rate, bare_rate),
    )
    return table


def _cache_table(cache: dict[str, Samples]) -> Table:
    table = Table(["bench_inc with Prefer: wait", "p50 ms", "p99 ms"])
    for name, values in cache.items():
        table.add(name, f"{values.median * 1e3:.2f}", f"{values.percentile(0.99) * 1e3:.2f}")
    return table


def _followers_table(followers: dict[str, dict[str, float]]) -> Table:
    table = Table(
        [
            "followers on one API process",
            "API Redis connections idle -> following",
            "API RSS MiB idle -> following",
            "delay p50 ms",
            "delay p99 ms",
        ]
    )
    for kind, figures in followers.items():
        table.add(
            f"{figures['followers']:,.0f} {kind}",
            f"{figures['connections before']:.0f} -> {figures['connections during']:.0f}",
            f"{figures['rss before MiB']:.0f} -> {figures['rss during MiB']:.0f}",
            f"{figures['p50 delay ms']:.1f}",
            f"{figures['p99 delay ms']:.1f}",
        )
    return table


def _targets(
    latency: dict[str, Samples],
    arrayq_rate: float | None,
    bare_rate: float | None,
    cache: dict[str, Samples],
) -> list[Target]:
    celery = latency[BARE].median
    polled, waited = latency[POLLED].median / celery, latency[WAITED].median / celery
    miss, hit = (values.median for values in cache.values())
    targets = _latency_targets(polled, waited, hit, miss)
    if arrayq_rate and bare_rate:
        share = arrayq_rate / bare_rate
        targets.append(Target("drain rate vs bare Celery", f">= {THROUGHPUT_SHARE:.0%}",
                              f"{share:.0%}", share >= THROUGHPUT_SHARE))  # fmt: skip
    return targets


def _latency_targets(polled: float, waited: float, hit: float, miss: float) -> list[Target]:
    return [
        Target("p50 polling vs bare Celery", f"<= {POLL_LIMIT}x", f"{polled:.2f}x",
               polled <= POLL_LIMIT),
        Target("p50 Prefer: wait vs bare Celery", f"<= {WAIT_LIMIT}x", f"{waited:.2f}x",
               waited <= WAIT_LIMIT),
        Target("cache hit vs miss, p50", "< 1x", f"{hit / miss:.2f}x", hit < miss),
    ]  # fmt: skip
