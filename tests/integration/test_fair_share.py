"""Fair share: with ARRAYQ_TENANT_MAX_ACTIVE=2, one tenant's flood waits in its
own backlog, and another tenant's job runs as soon as a worker is free."""

import re
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from arrayq.client.processes import wait_until
from arrayq.storage import keys
from tests.support.faults import (
    FAST_HEARTBEAT,
    ensure_workers,
    kill,
    own_service,
    pool_child,
    restart_redis,
    running_on,
)
from tests.support.jobs import wait_for
from tests.support.service import Service

ALICE = {"Authorization": "Bearer ka"}
BOB = {"Authorization": "Bearer kb"}
LIMIT = 2


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    env = {
        "ARRAYQ_API_KEYS": "ka:alice,kb:bob",
        "ARRAYQ_TENANT_MAX_ACTIVE": str(LIMIT),
        **FAST_HEARTBEAT,
    }
    with own_service(tmp_path_factory.mktemp("fair"), workers=2, extra_env=env) as running:
        yield running


@pytest.fixture
def alice(service: Service) -> Iterator[httpx.Client]:
    with service.client(headers=ALICE) as client:
        yield client


@pytest.fixture
def bob(service: Service) -> Iterator[httpx.Client]:
    with service.client(headers=BOB) as client:
        yield client


def sleep_job(http: httpx.Client, seconds: float) -> dict:
    response = http.post("/jobs", json={"op": "sleep", "params": {"seconds": seconds}})
    assert response.status_code == 202, response.text
    return response.json()


def gauges(http: httpx.Client) -> dict[str, float]:
    text = http.get("/metrics").text
    pattern = r'^(arrayq_tenant_\w+)\{tenant="(\w+)"\} ([0-9.]+)$'
    return {f"{m[1]}:{m[2]}": float(m[3]) for m in re.finditer(pattern, text, re.MULTILINE)}


def active_of(service: Service, tenant: str) -> set[str]:
    with redis.Redis.from_url(service.redis_url, decode_responses=True) as client:
        return client.smembers(keys.tenant_active_key(tenant))


def test_a_flood_waits_in_its_backlog_and_another_tenant_goes_first(service, alice, bob):
    flood = [sleep_job(alice, 0.5)["id"] for _ in range(30)]
    wait_until(lambda: len(active_of(service, "alice")) == LIMIT, 10, "alice's first jobs")
    metrics = gauges(alice)
    assert metrics["arrayq_tenant_active_jobs:alice"] == LIMIT
    assert metrics["arrayq_tenant_backlog_length:alice"] >= 30 - LIMIT - 2, metrics

    submitted = time.monotonic()
    other = wait_for(bob, sleep_job(bob, 0.5)["id"], timeout=30)
    waited = time.monotonic() - submitted
    print(f"bob's 0.5 s job finished {waited:.2f} s after it was submitted behind 30")
    assert other["status"] == "succeeded"
    # At most one of alice's half-second jobs stands before it, plus its own run.
    assert waited < 0.5 + 0.5 + 1.5, waited

    most_active = 0
    while True:
        most_active = max(most_active, len(active_of(service, "alice")))
        jobs = [alice.get(f"/jobs/{job_id}").json() for job_id in flood]
        if all(job["status"] == "succeeded" for job in jobs):
            break
        time.sleep(0.1)
    assert most_active <= LIMIT
    assert all(job["attempts"] == 1 for job in jobs)
    starts = [job["started_at"] for job in jobs]
    # Released in submission order (two released together may start either way round).
    assert all(starts[i] < starts[i + LIMIT] for i in range(len(starts) - LIMIT)), starts
    assert active_of(service, "alice") == set()
    assert gauges(alice)["arrayq_tenant_backlog_length:alice"] == 0


def test_a_cancelled_backlog_job_never_runs_and_frees_no_room_twice(service, alice):
    running = [sleep_job(alice, 1.0)["id"] for _ in range(LIMIT)]
    waiting = [sleep_job(alice, 0.2)["id"] for _ in range(3)]
    assert alice.delete(f"/jobs/{waiting[0]}").status_code == 204
    for job_id in running + waiting[1:]:
        assert wait_for(alice, job_id)["status"] == "succeeded"
    cancelled = alice.get(f"/jobs/{waiting[0]}").json()
    assert cancelled["status"] == "cancelled" and cancelled["attempts"] == 0
    assert active_of(service, "alice") == set()


def test_the_sweep_frees_room_a_crash_left_taken(service, alice):
    """A crash between the steps can leave a finished job in the active set;
    the workers' sweep frees its room and releases the backlog."""
    finished = [wait_for(alice, sleep_job(alice, 0.01)["id"])["id"] for _ in range(LIMIT)]
    with redis.Redis.from_url(service.redis_url, decode_responses=True) as client:
        client.sadd(keys.tenant_active_key("alice"), *finished)
    stuck = sleep_job(alice, 0.01)["id"]  # backlogged: the room looks taken
    assert wait_for(alice, stuck, timeout=20)["status"] == "succeeded"
    assert active_of(service, "alice") == set()


def finish_all(http: httpx.Client, service: Service, job_ids: list[str]) -> list[dict]:
    most_active = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        most_active = max(most_active, len(active_of(service, "alice")))
        jobs = [http.get(f"/jobs/{job_id}").json() for job_id in job_ids]
        if all(job["status"] in {"succeeded", "failed", "cancelled"} for job in jobs):
            assert most_active <= LIMIT
            return jobs
        time.sleep(0.1)
    raise TimeoutError([job["status"] for job in jobs])


def test_a_killed_worker_loses_no_release_and_doubles_none(service, alice):
    job_ids = [sleep_job(alice, 1.0)["id"] for _ in range(6)]
    victim = running_on(service, alice, job_ids[0])
    kill(pool_child(victim))
    jobs = finish_all(alice, service, job_ids)
    assert [job["status"] for job in jobs] == ["succeeded"] * 6
    assert jobs[0]["attempts"] == 2 and all(job["attempts"] == 1 for job in jobs[2:])
    assert active_of(service, "alice") == set()
    ensure_workers(service, 2)


def test_a_redis_restart_keeps_the_backlog(service, alice):
    job_ids = [sleep_job(alice, 0.3)["id"] for _ in range(8)]
    wait_until(lambda: len(active_of(service, "alice")) == LIMIT, 10, "alice's first jobs")
    restart_redis(service, lambda: time.sleep(1))
    jobs = finish_all(alice, service, job_ids)
    assert [job["status"] for job in jobs] == ["succeeded"] * 8
    assert active_of(service, "alice") == set()


def uses(http: httpx.Client, job_id: str) -> dict:
    """An identity job fed the result of `job_id` by reference."""
    response = http.post("/jobs", json={"op": "identity", "inputs": {"x": {"job": job_id}}})
    assert response.status_code == 202, response.text
    return response.json()


def test_a_backlogged_job_still_waits_for_the_job_it_uses(service, alice):
    """Room freed by another job does not start a job whose input is unfinished."""
    slow, quick = sleep_job(alice, 2.0)["id"], sleep_job(alice, 0.2)["id"]
    dependent = uses(alice, slow)  # the room is full: it would be backlogged
    assert dependent["waiting_for"] == [slow]
    assert wait_for(alice, quick)["status"] == "succeeded"
    assert alice.get(f"/jobs/{dependent['id']}").json()["status"] == "queued"
    done, used = wait_for(alice, dependent["id"], timeout=30), wait_for(alice, slow)
    assert done["status"] == "succeeded", done
    assert done["started_at"] >= used["finished_at"]
    assert active_of(service, "alice") == set()


def test_a_waiting_job_takes_no_room(service, alice):
    """A job waiting for another is neither queued nor running: a later
    independent job of the same tenant runs meanwhile."""
    slow = sleep_job(alice, 1.5)["id"]
    dependents = [uses(alice, slow)["id"] for _ in range(LIMIT)]
    assert active_of(service, "alice") == {slow}
    later = wait_for(alice, sleep_job(alice, 0.1)["id"], timeout=30)
    jobs = finish_all(alice, service, [slow, *dependents])
    assert later["finished_at"] < jobs[0]["finished_at"]
    assert [job["status"] for job in jobs] == ["succeeded"] * (1 + LIMIT)
    assert all(job["started_at"] >= jobs[0]["finished_at"] for job in jobs[1:])
    assert active_of(service, "alice") == set()
