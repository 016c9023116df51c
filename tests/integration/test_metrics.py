"""GET /metrics on the real service: counts move by exactly what the test did.

The session service is shared, so every check compares a scrape before with a
scrape after. Job outcomes are counted by the workers just after the final
status is written, so those checks wait for the count to arrive.
"""

import re
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from arrayq.client.processes import Managed, arrayq_command, free_port, http_answers, wait_until
from arrayq.storage.jobs import JobStore, NewJob
from arrayq.storage.redis_client import connect
from arrayq.storage.stats import DURATION_BUCKETS, JobStats
from tests.support.jobs import run, submit, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def http(service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def settle(http: httpx.Client, done: Callable[[Samples], bool], timeout: float = 10.0) -> Samples:
    """Scrape until `done` holds; the last scrape either way."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(http)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


# job counts


def test_submitted_finished_and_durations_by_op(http):
    before = scrape(http)
    for factor in (2, 3):
        run(http, "scale", {"factor": factor}, x=np.ones(3))
    failed = wait_for(http, submit(http, "fail", {"message": "counted"})["id"])
    assert failed["status"] == "failed"

    def finished(samples: Samples) -> bool:
        return (
            delta(before, samples, "arrayq_jobs_finished_total", op="scale", status="succeeded")
            >= 2
            and delta(before, samples, "arrayq_jobs_finished_total", op="fail", status="failed")
            >= 1
        )

    after = settle(http, finished)
    assert delta(before, after, "arrayq_jobs_submitted_total", op="scale") == 2
    assert delta(before, after, "arrayq_jobs_submitted_total", op="fail") == 1
    assert delta(before, after, "arrayq_jobs_finished_total", op="scale", status="succeeded") == 2
    assert delta(before, after, "arrayq_jobs_finished_total", op="fail", status="failed") == 1
    assert delta(before, after, "arrayq_jobs_finished_total", op="scale", status="failed") == 0
    assert delta(before, after, "arrayq_job_duration_seconds_count", op="scale") == 2
    assert delta(before, after, "arrayq_job_duration_seconds_count", op="fail") == 1
    assert delta(before, after, "arrayq_job_duration_seconds_sum", op="scale") > 0
    assert value(after, "arrayq_job_stats_up") == 1


def test_duration_buckets_are_cumulative(http):
    run(http, "sleep", {"seconds": 0.3})
    samples = settle(http, lambda s: value(s, "arrayq_job_duration_seconds_count", op="sleep") > 0)
    bounds = [*DURATION_BUCKETS, "+Inf"]
    counts = [
        value(samples, "arrayq_job_duration_seconds_bucket", op="sleep", le=b) for b in bounds
    ]
    assert counts == sorted(counts)
    assert counts[-1] == value(samples, "arrayq_job_duration_seconds_count", op="sleep")
    assert value(samples, "arrayq_job_duration_seconds_bucket", op="sleep", le="0.25") < counts[-1]


def test_a_cancelled_job_is_counted_once_and_has_no_duration(http):
    before = scrape(http)
    job = submit(http, "sleep", {"seconds": 30})
    wait_for(http, job["id"], {"running"})
    assert http.delete(f"/jobs/{job['id']}").status_code == 204
    assert wait_for(http, job["id"])["status"] == "cancelled"
    # Later jobs give the worker that ran the sleep time to report its end
    # too: the job is counted once all the same.
    for _ in range(2):
        run(http, "sleep", {"seconds": 0.2})
    after = scrape(http)
    assert delta(before, after, "arrayq_jobs_finished_total", op="sleep", status="cancelled") == 1
    assert delta(before, after, "arrayq_jobs_finished_total", op="sleep", status="succeeded") == 2
    assert delta(before, after, "arrayq_job_duration_seconds_count", op="sleep") == 2


def test_queue_length(http):
    blockers = [submit(http, "sleep", {"seconds": 30}) for _ in range(2)]
    for blocker in blockers:
        wait_for(http, blocker["id"], {"running"})
    before = scrape(http)
    queued = [submit(http, "svd", cache=False, x=np.eye(2)) for _ in range(3)]
    during = scrape(http)
    assert delta(before, during, "arrayq_queue_length", queue="default") == 3
    assert delta(before, during, "arrayq_queue_length", queue="long") == 0
    for job in queued + blockers:
        http.delete(f"/jobs/{job['id']}")
    drained = settle(http, lambda s: value(s, "arrayq_queue_length", queue="default") == 0)
    assert value(drained, "arrayq_queue_length", queue="default") == 0


# per-process metrics


def test_result_bytes_by_format(http):
    job = run(http, "random", {"shape": [20, 30], "seed": 5})
    url = f"/jobs/{job['id']}/result"
    before = scrape(http)
    sizes = {fmt: len(http.get(url, params={"format": fmt}).content) for fmt in ("json", "npy")}
    sizes["png"] = len(http.get(url, headers={"Accept": "image/png"}).content)
    part = http.get(url, params={"format": "npy"}, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert http.head(url, params={"format": "npy"}).status_code == 200
    assert http.get(f"/jobs/{job['id']}/result/url").status_code == 200
    after = scrape(http)
    assert delta(before, after, "arrayq_result_bytes_total", format="json") == sizes["json"]
    assert delta(before, after, "arrayq_result_bytes_total", format="npy") == sizes["npy"] + 100
    assert delta(before, after, "arrayq_result_bytes_total", format="png") == sizes["png"]


def test_http_latency_by_route_template(http):
    jobs = [run(http, "svd", x=np.eye(2)) for _ in range(2)]
    before = scrape(http)
    for job in jobs:
        assert http.get(f"/jobs/{job['id']}").status_code == 200
    assert http.get(f"/jobs/{'0' * 32}").status_code == 404
    assert http.get("/no/such/route").status_code == 404
    after = scrape(http)
    name = "arrayq_http_request_duration_seconds_count"
    assert delta(before, after, name, route="/jobs/{job_id}", method="GET", status="200") == 2
    assert delta(before, after, name, route="/jobs/{job_id}", method="GET", status="404") == 1
    assert delta(before, after, name, route="unmatched", method="GET", status="404") == 1
    routes = {dict(labels).get("route") for (sample, labels) in after if sample == name}
    assert not any(re.search(r"[0-9a-f]{32}", route or "") for route in routes)


@pytest.fixture(scope="module")
def second_replica(service, tmp_path_factory) -> Iterator[str]:
    """Another API process on the same Redis and workers, this one with API keys."""
    port = free_port()
    replica = Managed(
        "api-replica",
        arrayq_command("api", "--port", str(port)),
        env={**service.env, "ARRAYQ_API_KEYS": "replica-key:tenant"},
        log_path=tmp_path_factory.mktemp("replica") / "api.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_answers(f"{url}/healthz"), 30, "the second API")
        yield url
    finally:
        replica.stop(timeout=15)


def job_counts(samples: Samples) -> Samples:
    names = {"arrayq_jobs_submitted_total", "arrayq_jobs_finished_total"}
    return {key: count for key, count in samples.items() if key[0] in names}


def test_metrics_need_no_key_and_replicas_agree_on_job_counts(http, second_replica):
    run(http, "svd", x=np.eye(2))
    with httpx.Client(base_url=second_replica, timeout=30.0) as other:
        assert other.get("/jobs").status_code == 401
        for _ in range(20):
            # Counters only grow: equal before and after means equal in between.
            first, second, again = scrape(http), scrape(other), scrape(http)
            if job_counts(first) == job_counts(again):
                break
    assert job_counts(second) == job_counts(first)
    assert value(second, "arrayq_jobs_submitted_total", op="svd") > 0


# the Redis counters themselves


def test_the_status_machine_counts_a_final_status_exactly_once(service):
    client = connect(service.redis_url)
    jobs, stats = JobStore(client, ttl_seconds=60), JobStats(client)
    op = f"stats-probe-{time.time_ns()}"
    job = jobs.create(NewJob(tenant="stats", op=op, params={}, inputs={}, queue="default")).job
    assert stats.snapshot().submitted[op] == 1
    assert (op, "cancelled") not in stats.snapshot().finished  # still queued
    assert jobs.cancel(job.id)
    assert not jobs.cancel(job.id)  # a second cancel changes nothing, counts nothing
    assert not jobs.fail(job.id, error_type="x", message="y")  # not running: refused
    snapshot = stats.snapshot()
    assert snapshot.finished[(op, "cancelled")] == 1
    assert (op, "failed") not in snapshot.finished
    assert op not in snapshot.durations
    client.close()
