"""docker-compose.yml run for real: the image built from deploy/Dockerfile, the file's own
services in containers, every request from the host over the published ports.

One project goes through the steps in order (up, spread, scale, kill, restart, down); each
step leaves it in the state the next expects. The figures (time to healthy, jobs per worker,
recovery after a SIGKILL) are printed at the end of the run."""

import io
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.deploy.project import Project
from tests.support.jobs import run, submit, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(900)]


@pytest.fixture
def http(project: Project) -> Iterator[httpx.Client]:
    url = f"http://127.0.0.1:{project.variables['API_PORT']}"
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def sleeps(http: httpx.Client, count: int, seconds: float) -> list[str]:
    return [submit(http, "sleep", {"seconds": seconds})["id"] for _ in range(count)]


def all_final(http: httpx.Client, ids: list[str], timeout: float = 180) -> list[dict]:
    return [wait_for(http, job_id, timeout=timeout) for job_id in ids]


def up(project: Project, workers: int) -> float:
    """`up --scale worker=N --wait`; the seconds it took."""
    started = time.monotonic()
    project.compose(
        "up", "--detach", "--no-build", "--scale", f"worker={workers}",
        "--wait", "--wait-timeout", "240",
        timeout=300,
    )  # fmt: skip
    return time.monotonic() - started


def test_up_with_three_workers_is_healthy(project, figures):
    figures["time to healthy (up --scale worker=3 --wait)"] = f"{up(project, 3):.1f} s"
    containers = project.containers()
    health = Counter((c.service, c.health) for c in containers if c.state == "running")
    assert health == {
        ("redis", "healthy"): 1,
        ("seaweedfs", "healthy"): 1,
        ("api", "healthy"): 1,
        ("worker", "healthy"): 3,
    }, containers
    [bucket] = [c for c in containers if c.service == "createbucket"]
    assert (bucket.state, bucket.exit_code) == ("exited", 0)


def test_a_job_end_to_end_and_its_presigned_url_from_the_host(project, http):
    a = np.arange(12.0).reshape(3, 4)
    job = run(http, "matmul", a=a, b=a.T)
    link = http.get(f"/jobs/{job['id']}/result/url").json()["url"]
    assert urlsplit(link).netloc == f"localhost:{project.variables['S3_PORT']}"
    download = httpx.get(link, timeout=30)  # straight from the S3 container's published port
    assert download.status_code == 200, download.text
    result = np.load(io.BytesIO(download.content), allow_pickle=False)
    np.testing.assert_array_equal(result, a @ a.T)


def test_jobs_spread_over_all_three_workers(project, http, figures):
    ids = sleeps(http, 30, 0.5)
    assert {d["status"] for d in all_final(http, ids)} == {"succeeded"}
    per_worker = Counter(project.workers_of(ids).values())
    assert set(per_worker) == {c.name for c in project.containers("worker")}, per_worker
    figures["jobs per worker (30 jobs of 0.5 s, 3 workers)"] = "/".join(
        str(n) for _, n in sorted(per_worker.items())
    )


def test_scale_down_to_one_and_up_to_four_while_jobs_run(project, http, figures):
    ids = sleeps(http, 50, 1.0)
    project.compose("up", "--detach", "--no-build", "--scale", "worker=1", timeout=180)
    unfinished = sum(http.get(f"/jobs/{i}").json()["status"] != "succeeded" for i in ids[-10:])
    assert unfinished, "the jobs were done before the workers were scaled down"
    assert len([c for c in project.containers("worker") if c.state == "running"]) == 1
    up(project, 4)
    documents = all_final(http, ids)
    assert [(d["status"], d["attempts"]) for d in documents] == [("succeeded", 1)] * 50
    per_worker = Counter(project.workers_of(ids).values())
    figures["50 jobs of 1 s across 3 -> 1 -> 4 workers, per worker"] = ", ".join(
        f"{name}: {n}" for name, n in sorted(per_worker.items())
    )


def test_a_job_of_a_sigkilled_worker_is_requeued_and_succeeds(project, http, figures):
    [job_id] = sleeps(http, 1, 6.0)
    wait_for(http, job_id, {"running"}, timeout=60)
    victim = project.workers_of([job_id])[job_id]
    project.engine.docker("kill", "--signal", "KILL", victim)
    killed = time.monotonic()
    restarted = wait_until_attempts(http, job_id, 2, timeout=180) - killed
    document = wait_for(http, job_id, timeout=120)
    done = time.monotonic() - killed
    assert (document["status"], document["attempts"]) == ("succeeded", 2), document
    assert project.workers_of([job_id])[job_id] != victim
    figures["recovery after SIGKILL of the job's worker"] = (
        f"running again after {restarted:.1f} s, succeeded after {done:.1f} s "
        "(a 6 s job; heartbeat timeout 30 s)"
    )


def wait_until_attempts(http: httpx.Client, job_id: str, attempts: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http.get(f"/jobs/{job_id}").json()["attempts"] >= attempts:
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} never reached attempt {attempts}")


def test_restarting_redis_loses_no_queued_job(project, http):
    project.compose("stop", "worker", timeout=180)
    ids = sleeps(http, 20, 0.1)
    assert [answered(http, i)["status"] for i in ids] == ["queued"] * 20
    assert waiting(project, ids) == set(ids)
    assert "aof_enabled:1" in project.redis(["INFO", "persistence"])
    project.compose("restart", "redis", timeout=120)
    project.wait_healthy("redis")
    assert waiting(project, ids) == set(ids)
    assert [answered(http, i)["status"] for i in ids] == ["queued"] * 20
    project.compose("start", "worker", timeout=180)
    documents = all_final(http, ids)
    assert [(d["status"], d["attempts"]) for d in documents] == [("succeeded", 1)] * 20


def waiting(project: Project, ids: list[str]) -> set[str]:
    """Which of these jobs have their message on a queue in Redis."""
    messages = project.queued_messages()
    return {job_id for job_id in ids if any(job_id in message for message in messages)}


def answered(http: httpx.Client, job_id: str, timeout: float = 30) -> dict:
    """The job's document once the API answers again (its Redis connections were cut)."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/jobs/{job_id}")
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(0.5)


def test_down_with_volumes_leaves_nothing(project):
    project.compose("down", "--volumes", "--timeout", "30", timeout=180)
    assert project.leftovers() == {"containers": [], "networks": [], "volumes": []}
