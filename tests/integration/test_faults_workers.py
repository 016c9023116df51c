"""Fault injection on worker processes: killed, stopped, absent, outlived by the broker.

The service of this module is its own (the tests kill its workers) and runs with
a 3 s heartbeat timeout and a 2 s broker visibility timeout, so that re-queues
and redeliveries happen within each test.
"""

import signal
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from arrayq.client.processes import wait_until
from tests.support.faults import (
    FAST_HEARTBEAT,
    drop_message,
    ensure_workers,
    kill,
    own_service,
    pool_child,
    record,
    result_files,
    running_on,
    wait_attempt,
    wait_status,
    wait_workers,
    worker_log,
)
from tests.support.jobs import result_array, run, submit, wait_for
from tests.support.service import Service

SETTINGS = {**FAST_HEARTBEAT, "ARRAYQ_VISIBILITY_TIMEOUT_SECONDS": "2"}


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with own_service(tmp_path_factory.mktemp("fragile"), extra_env=SETTINGS) as service:
        yield service


@pytest.fixture
def http(fragile: Service) -> Iterator[httpx.Client]:
    ensure_workers(fragile, 2)
    with fragile.client() as client:
        yield client


@pytest.mark.parametrize("target", ["main process", "pool process"])
def test_killed_worker_job_runs_again_and_finishes_once(fragile, http, target):
    job_id = submit(http, "sleep", {"seconds": 2})["id"]
    victim = running_on(fragile, http, job_id)
    kill(victim.pid if target == "main process" else pool_child(victim))
    killed_at = time.monotonic()

    rerun = wait_attempt(http, job_id, 2, timeout=60)
    print(f"{target} killed: attempt 2 started after {time.monotonic() - killed_at:.1f} s")
    assert time.monotonic() - killed_at < 60
    if target == "main process":
        assert not record(fragile, job_id)["worker"].startswith(f"arrayq-{victim.pid}@")
    job = wait_for(http, job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 2, (rerun, job)
    assert result_array(http, job_id) == 2.0
    assert len(result_files(fragile, job_id)) == 1


def test_job_that_kills_its_worker_every_time_fails_after_max_attempts(fragile, http):
    job = wait_for(http, submit(http, "crash")["id"], timeout=120)
    assert job["status"] == "failed"
    assert job["attempts"] == 3  # ARRAYQ_MAX_ATTEMPTS, default 3
    assert job["error"]["type"] == "worker_lost"
    assert "gave up after 3 attempts" in job["error"]["message"]
    assert run(http, "svd", x=np.eye(2))["status"] == "succeeded"


def test_warm_shutdown_finishes_the_running_job_and_loses_none(fragile, http):
    jobs = [submit(http, "sleep", {"seconds": 1.5})["id"] for _ in range(4)]
    victim = running_on(fragile, http, jobs[0])
    victim.send_signal(signal.SIGTERM)
    assert victim.popen is not None
    assert victim.popen.wait(timeout=60) == 0

    finished = [wait_for(http, job_id, timeout=60) for job_id in jobs]
    assert [job["status"] for job in finished] == ["succeeded"] * 4
    assert [job["attempts"] for job in finished] == [1] * 4


def test_job_longer_than_the_visibility_timeout_runs_once(fragile, http):
    job_id = submit(http, "sleep", {"seconds": 8})["id"]
    job = wait_for(http, job_id, timeout=60)
    assert job["status"] == "succeeded" and job["attempts"] == 1
    # The broker did hand the message out again (2 s visibility timeout), and
    # the copy stepped aside because the first run's heartbeat was alive.
    assert f"job {job_id} not started" in worker_log(fragile)


def test_job_cancelled_while_no_worker_runs_never_runs(fragile, http):
    for worker in fragile.workers:
        worker.stop()
    job_id = submit(http, "sleep", {"seconds": 0.1})["id"]
    assert http.delete(f"/jobs/{job_id}").status_code == 204
    ensure_workers(fragile, 2)

    assert run(http, "sleep", {"seconds": 0.1})["attempts"] == 1  # queued behind it
    # A worker took the cancelled job's message and left the job alone.
    wait_until(lambda: f"job {job_id} not started" in worker_log(fragile), 30, "the message")
    job = http.get(f"/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    assert job["attempts"] == 0 and job["started_at"] is None
    assert result_files(fragile, job_id) == []


def test_job_whose_message_was_lost_is_queued_again(fragile, http):
    for worker in fragile.workers:
        worker.stop()
    job_id = submit(http, "sleep", {"seconds": 0.1})["id"]
    # As a worker killed between popping the message and recording it as taken.
    assert drop_message(fragile, "long", job_id)
    ensure_workers(fragile, 2)

    job = wait_for(http, job_id, timeout=60)
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert f"job {job_id} had no message on the queue; queued again" in worker_log(fragile)


def test_short_jobs_do_not_wait_behind_a_long_one(tmp_path):
    with own_service(tmp_path, workers=0) as service, service.client() as http:
        service.start_worker("--queues", "long")
        service.start_worker("--queues", "default")
        wait_workers(service, 2)
        long_id = submit(http, "sleep", {"seconds": 60})["id"]
        wait_status(http, long_id, {"running"})
        short = [submit(http, "scale", {"factor": i}, x=np.ones(3))["id"] for i in range(20)]

        finished = [wait_for(http, job_id, timeout=45) for job_id in short]
        assert [job["status"] for job in finished] == ["succeeded"] * 20
        assert http.get(f"/jobs/{long_id}").json()["status"] == "running"
        assert http.delete(f"/jobs/{long_id}").status_code == 204
