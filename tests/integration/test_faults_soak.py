"""Soak: 1,000 small jobs at once on two workers, one of them killed and restarted
twice during the run. Every job succeeds, none finishes twice, none is lost."""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.faults import FAST_HEARTBEAT, ensure_workers, kill, own_service, result_files
from tests.support.jobs import result_array, submit
from tests.support.service import Service

JOBS = 1000


def succeeded(http: httpx.Client) -> list[dict[str, object]]:
    response = http.get("/jobs", params={"status": "succeeded", "limit": JOBS})
    return response.json()["items"]


def wait_succeeded(http: httpx.Client, count: int, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while len(done := succeeded(http)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)} of {count} jobs succeeded after {timeout}s")
        time.sleep(0.5)
    return done


def kill_and_restart(service: Service, http: httpx.Client, after: int) -> None:
    """Once `after` jobs have succeeded, SIGKILL the first live worker and start another."""
    wait_succeeded(http, after, timeout=120)
    victim = next(worker for worker in service.workers if worker.alive())
    kill(victim.pid)
    victim.popen.wait(10)
    ensure_workers(service, 2)


@pytest.mark.slow
def test_thousand_jobs_with_a_worker_killed_twice(tmp_path):
    tally = tmp_path / "tally.txt"
    env = {
        **FAST_HEARTBEAT,
        "ARRAYQ_VISIBILITY_TIMEOUT_SECONDS": "5",
        "ARRAYQ_TEST_TALLY_FILE": str(tally),
    }
    with own_service(tmp_path / "arrayq", extra_env=env) as service, service.client() as http:
        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda i: submit(http, "tally", {"token": i})["id"], range(JOBS)))
        kill_and_restart(service, http, after=JOBS // 5)
        kill_and_restart(service, http, after=JOBS // 2)

        jobs = {job["id"]: job for job in wait_succeeded(http, JOBS, timeout=150)}
        assert set(jobs) == set(ids)
        assert len(result_files(service)) == JOBS
        runs = Counter(int(line) for line in tally.read_text().split())
        assert set(runs) == set(range(JOBS))
        for token, job_id in enumerate(ids):
            # A run may complete its op and die before recording it: that job's
            # next attempt runs the op again. No other job runs twice.
            assert runs[token] <= jobs[job_id]["attempts"] <= 3, jobs[job_id]
        repeated = [job for job in jobs.values() if job["attempts"] > 1]
        print(f"{len(repeated)} of {JOBS} jobs needed a second attempt")
        assert len(repeated) <= 4
        for token in range(0, JOBS, 97):
            assert result_array(http, ids[token]) == token
