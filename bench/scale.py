"""7. Cost as work grows: listing, the status filter, Redis memory per job and the
cleanup, at 100 to 100,000 jobs of one tenant (records written by the job store itself)."""

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import redis

from arrayq.api.deps import DEFAULT_TENANT
from arrayq.storage import codecs, keys
from arrayq.storage.jobs import JobStatus, JobStore, NewJob
from arrayq.storage.local import LocalStore
from bench.config import Plan
from bench.report import Section, Table, Target, ratio
from bench.services import running_service
from bench.timing import Samples, samples

LIST_GROWTH_LIMIT = 1.5
MEMORY_GOAL_BYTES = 1024
TTL = 7 * 24 * 3600
LISTPACK_VALUE = 1024
RESULT = {"dtype": "float64", "shape": [1000], "nbytes": 8000, "kind": "array",
          "formats": ["json", "npy"]}  # fmt: skip


def run(plan: Plan, workdir: Path) -> Section:
    section = Section(
        "7. Cost as work grows",
        "One tenant's jobs, written through `JobStore.create` (the same Lua script as "
        "`POST /jobs`) into a service with no worker, so they stay queued; the oldest job "
        "of all is the one failed job. Each figure is the p50 of sequential requests over "
        "loopback with httpx, measured once the tenant has that many jobs. Memory per "
        "finished job is Redis `used_memory` growth over jobs created, started and "
        "succeeded (record, tenant index, status index), divided by their number.",
    )
    with running_service(workdir / "service", workers=0) as service:
        client = redis.Redis.from_url(service.redis_url, decode_responses=True)
        store = JobStore(client, ttl_seconds=TTL)
        listing = _listing(service.url, store, plan)
        client.config_set("hash-max-listpack-value", 64)  # Redis's default
        memory = _memory_per_job(client, store, plan.scale_memory_jobs)
        client.config_set("hash-max-listpack-value", LISTPACK_VALUE)  # as `arrayq up` sets it
        compact = _memory_per_job(client, store, plan.scale_memory_jobs)
        after_expiry = _after_expiry(service.url, client, store)
        client.close()
    cleanup_seconds = _cleanup(workdir / "cleanup", plan.scale_sizes[-1])
    section.tables.append(_listing_table(listing))
    section.tables.append(_cost_table(memory, compact, after_expiry, cleanup_seconds, plan))
    section.targets = _targets(listing, compact)
    return section


def _listing(url: str, store: JobStore, plan: Plan) -> dict[int, dict[str, Samples]]:
    sizes = plan.scale_sizes
    measured: dict[int, dict[str, list[float]]] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        failed = _create(store, 1)[0]
        store.fail(failed, error_type="bench", message="the one failed job",
                   allowed=(JobStatus.QUEUED,))  # fmt: skip
        made = 1
        for size in sizes:
            _create(store, size - made)
            made = size
            times: dict[str, list[float]] = {"all": [], "failed": []}
            for _ in range(3):  # warm-up
                _get(http, {"limit": 50})
            for _ in range(plan.scale_requests):
                times["all"].append(_get(http, {"limit": 50}, expect=50))
                times["failed"].append(_get(http, {"status": "failed", "limit": 50}, expect=1))
            measured[size] = times
    return {size: {k: samples(v) for k, v in times.items()} for size, times in measured.items()}


def _create(store: JobStore, count: int) -> list[str]:
    inputs = {"x": {"key": "inputs/t-00/0.npy", "dtype": "float64", "shape": [1000]}}
    ids = []
    for _ in range(count):
        new = NewJob(tenant=DEFAULT_TENANT, op="noop", params={}, inputs=inputs, queue="default",
                     id=keys.new_id())  # fmt: skip
        ids.append(store.create(new).job.id)
    return ids


def _get(http: httpx.Client, params: dict, expect: int | None = None) -> float:
    start = time.perf_counter()
    response = http.get("/jobs", params=params)
    took = time.perf_counter() - start
    items = response.json()["items"]
    if response.status_code != 200 or (expect is not None and len(items) != expect):
        raise RuntimeError(f"GET /jobs {params}: {response.status_code}, {len(items)} items")
    return took


def _memory_per_job(client: redis.Redis, store: JobStore, count: int) -> dict[str, float]:
    before = client.info("memory")["used_memory"]
    ids = _create(store, count)
    for job_id in ids:
        run_id = uuid.uuid4().hex
        store.start(job_id, run_id=run_id, worker="bench@host", stale_after=30, max_attempts=3)
        store.succeed(job_id, run_id=run_id, result=RESULT)
    grown = client.info("memory")["used_memory"] - before
    record = client.memory_usage(keys.job_key(ids[-1])) or 0
    encoding = client.object("encoding", keys.job_key(ids[-1]))
    return {"per_job": grown / count, "record": float(record), "encoding": encoding,
            "fields": float(client.hlen(keys.job_key(ids[-1])))}  # fmt: skip


def _after_expiry(url: str, client: redis.Redis, store: JobStore) -> dict[str, float]:
    """Every record deleted at once, as when they all expire: the first listing
    finds only stale index entries and removes them."""
    index = keys.tenant_jobs_key(DEFAULT_TENANT)
    ids = client.zrange(index, 0, -1)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.delete(keys.job_key(job_id))
    pipe.execute()
    start = time.perf_counter()
    pruned = store.prune_indexes()
    prune = time.perf_counter() - start
    with httpx.Client(base_url=url, timeout=600) as http:
        first = _get(http, {"limit": 50}, expect=0)
    return {"expired": float(len(ids)), "pruned": float(pruned), "prune": prune, "first": first}


def _cleanup(root: Path, count: int) -> float:
    """`delete_older_than` (the workers' periodic cleanup) over `count` expired results."""
    store = LocalStore(root)
    old = time.time() - TTL - 3600
    blob = b"".join(codecs.npy_chunks(np.zeros(2)))
    folder = root / "results" / keys.tenant_prefix(DEFAULT_TENANT)
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(count):
        path = folder / f"{uuid.uuid4().hex}.npy"
        path.write_bytes(blob)
        os.utime(path, (old, old))
    start = time.perf_counter()
    deleted = store.delete_older_than(timedelta(seconds=TTL))
    took = time.perf_counter() - start
    if deleted != count:
        raise RuntimeError(f"cleanup deleted {deleted} of {count} expired objects")
    return took


def _listing_table(listing: dict[int, dict[str, Samples]]) -> Table:
    table = Table(["jobs of the tenant", "GET /jobs?limit=50 p50 ms", "vs 100 jobs",
                   "GET /jobs?status=failed (1 failed) p50 ms", "vs 100 jobs"])  # fmt: skip
    base = listing[min(listing)]
    for size, times in listing.items():
        table.add(
            f"{size:,}",
            f"{times['all'].median * 1e3:.2f}",
            ratio(times["all"].median, base["all"].median),
            f"{times['failed'].median * 1e3:.2f}",
            ratio(times["failed"].median, base["failed"].median),
        )
    return table


def _cost_table(memory: dict, compact: dict, after: dict, cleanup: float, plan: Plan) -> Table:
    table = Table(["what", "measured"])
    for label, measured in (
        ("Redis defaults", memory),
        (f"hash-max-listpack-value {LISTPACK_VALUE}", compact),
    ):
        table.add(
            f"Redis memory per finished job, {label} ({plan.scale_memory_jobs:,} jobs)",
            f"{measured['per_job']:,.0f} bytes",
        )
        table.add(f"one finished record alone (MEMORY USAGE), {label}",
                  f"{measured['record']:,.0f} bytes, {measured['fields']:.0f} fields, "
                  f"encoding {measured['encoding']}")  # fmt: skip
    table.add(
        f"index pruning (workers' cleanup) after {after['expired']:,.0f} records expired",
        f"{after['prune']:,.2f} s, {after['pruned']:,.0f} stale entries removed",
    )
    table.add("the next GET /jobs?limit=50", f"{after['first'] * 1e3:,.2f} ms")  # fmt: skip
    count = plan.scale_sizes[-1]
    table.add(f"cleanup (delete_older_than) of {count:,} expired result files",
              f"{cleanup:,.2f} s ({cleanup / count * 1e6:,.0f} µs each)")  # fmt: skip
    return table


def _targets(listing: dict[int, dict[str, Samples]], memory: dict) -> list[Target]:
    small, large = min(listing), max(listing)
    targets = []
    for key, what in (("all", "GET /jobs?limit=50"), ("failed", "GET /jobs?status=failed")):
        growth = listing[large][key].median / listing[small][key].median
        targets.append(Target(f"{what} p50 at {large:,} vs {small:,} jobs",
                              f"<= {LIST_GROWTH_LIMIT}x", f"{growth:.2f}x",
                              growth <= LIST_GROWTH_LIMIT))  # fmt: skip
    what = f"Redis memory per finished job (hash-max-listpack-value {LISTPACK_VALUE})"
    targets.append(Target(what,
                          f"< {MEMORY_GOAL_BYTES} bytes",
                          f"{memory['per_job']:,.0f} bytes",
                          memory["per_job"] < MEMORY_GOAL_BYTES))  # fmt: skip
    return targets
