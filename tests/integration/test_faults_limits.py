"""Time and memory limits: a job past its soft or hard time limit fails with a
timeout, a result over ARRAYQ_MAX_RESULT_BYTES fails, a pool process that grew
past ARRAYQ_WORKER_MAX_MEMORY_MB is replaced, and the workers go on."""

import os
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from arrayq.client.processes import wait_until
from tests.support.faults import FAST_HEARTBEAT, own_service, pool_children, running_on
from tests.support.jobs import result_array, run, submit, wait_for
from tests.support.service import Service

SETTINGS = {
    **FAST_HEARTBEAT,
    "ARRAYQ_SOFT_TIME_LIMIT_SECONDS": "3",
    "ARRAYQ_MAX_RESULT_BYTES": str(1 << 20),
    "ARRAYQ_WORKER_MAX_MEMORY_MB": "200",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with own_service(tmp_path_factory.mktemp("limited"), extra_env=SETTINGS) as service:
        yield service


@pytest.fixture
def http(limited: Service) -> Iterator[httpx.Client]:
    with limited.client() as client:
        yield client


def failed(http: httpx.Client, op: str, params: dict[str, object]) -> dict[str, object]:
    job = wait_for(http, submit(http, op, params)["id"], timeout=60)
    assert job["status"] == "failed", job
    return job


@pytest.mark.parametrize(
    ("op", "limit"),
    [("spin", "op's own soft limit, 1 s"), ("sleep", "global soft limit, 3 s")],
)
def test_job_past_its_soft_time_limit_fails_with_timeout(http, op, limit):
    started = time.monotonic()
    job = failed(http, op, {"seconds": 40})
    assert time.monotonic() - started < 40
    assert job["error"]["type"] == "timeout", limit
    assert job["attempts"] == 1
    assert run(http, "pid")["status"] == "succeeded"


def test_hard_time_limit_stops_a_c_call_and_the_pool_process_is_replaced(limited, http):
    job_id = submit(http, "stuck", {"seconds": 40})["id"]
    worker = running_on(limited, http, job_id)
    [stuck_child] = pool_children(worker.pid)

    job = wait_for(http, job_id, timeout=60)
    assert job["status"] == "failed" and job["attempts"] == 1, job
    assert job["error"]["type"] == "timeout"
    assert "hard time limit" in job["error"]["message"]
    wait_until(lambda: pool_children(worker.pid) not in ([], [stuck_child]), 30, "a new pool")
    assert worker.alive()
    assert all(run(http, "pid")["status"] == "succeeded" for _ in range(4))


def test_result_over_the_limit_fails_the_job(http):
    job = failed(http, "zeros", {"nbytes": 2 << 20})
    assert job["error"]["type"] == "result_too_large"
    assert "ARRAYQ_MAX_RESULT_BYTES" in job["error"]["message"]
    assert run(http, "zeros", {"nbytes": 1 << 10})["result"]["nbytes"] == 1 << 10


def test_shape_bomb_is_refused_before_queueing(http):
    started = time.monotonic()
    response = http.post("/jobs", json={"op": "random", "params": {"shape": [100000, 100000]}})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "too_large"
    assert "ARRAYQ_MAX_RESULT_BYTES" in response.json()["error"]["message"]
    assert time.monotonic() - started < 5
    assert http.get("/jobs", params={"op": "random"}).json()["items"] == []


def test_pool_process_is_recycled_after_outgrowing_its_memory_limit(http):
    small = int(result_array(http, run(http, "pid")["id"]))
    big = int(result_array(http, run(http, "hog", {"megabytes": 300})["id"]))
    wait_until(lambda: not os.path.exists(f"/proc/{big}"), 30, "the recycled pool process")
    assert os.path.exists(f"/proc/{small}") or small == big  # a small job keeps its process
    assert run(http, "pid")["status"] == "succeeded"
    assert np.array_equal(result_array(http, run(http, "scale", x=np.ones(2))["id"]), [2, 2])
