"""`Prefer: wait=N` on POST /jobs and long polls on GET /jobs/{id}, and the one
subscription per API process that feeds them."""

import asyncio
import time

import httpx
import numpy as np
import pytest
import redis

from arrayq.storage.redis_client import ASYNC_POOL_CONNECTIONS
from tests.support.jobs import array_json, submit, wait_for

LONG_POLLS = 120


@pytest.fixture
def http(service) -> httpx.Client:
    with service.client() as client:
        yield client


def quick_body() -> dict:
    return {"op": "svd", "inputs": {"x": array_json(np.eye(3))}, "cache": False}


def test_a_job_final_within_the_wait_is_201(http):
    started = time.monotonic()
    response = http.post("/jobs", json=quick_body(), headers={"Prefer": "wait=10"})
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "wait=10"
    assert response.headers["location"] == f"/jobs/{response.json()['id']}"
    assert response.json()["status"] == "succeeded"
    assert time.monotonic() - started < 5


def test_a_job_not_final_in_time_is_202_after_the_wait(http):
    started = time.monotonic()
    body = {"op": "sleep", "params": {"seconds": 5}}
    response = http.post("/jobs", json=body, headers={"Prefer": "respond-async, wait=1"})
    took = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert "preference-applied" not in response.headers
    assert response.json()["status"] in {"queued", "running"}
    assert 1.0 <= took < 3.0
    http.delete(f"/jobs/{response.json()['id']}")


def test_waits_over_60_seconds_count_as_60_and_bad_values_are_ignored(http):
    response = http.post("/jobs", json=quick_body(), headers={"Prefer": "wait=3600"})
    assert response.status_code == 201 and response.headers["preference-applied"] == "wait=60"
    ignored = http.post("/jobs", json=quick_body(), headers={"Prefer": "wait=soon"})
    assert ignored.status_code == 202 and "preference-applied" not in ignored.headers


def test_a_cache_hit_with_prefer_is_201_at_once(http):
    body = {"op": "svd", "inputs": {"x": array_json(np.diag([5.0, 3.0]))}}
    wait_for(http, http.post("/jobs", json=body).json()["id"])
    hit = http.post("/jobs", json=body, headers={"Prefer": "wait=5"})
    assert hit.status_code == 201 and hit.json()["cached_from"]


def test_long_poll_answers_when_the_job_is_final(http):
    job = submit(http, "sleep", {"seconds": 1.5})
    started = time.monotonic()
    response = http.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=20"})
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert time.monotonic() - started < 6


def test_long_poll_answers_after_the_wait_with_the_job_as_it_is(http):
    job = submit(http, "sleep", {"seconds": 20})
    started = time.monotonic()
    response = http.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=1"})
    assert 1.0 <= time.monotonic() - started < 3.0
    assert response.json()["status"] in {"queued", "running"}
    assert http.delete(f"/jobs/{job['id']}").status_code == 204


def test_long_poll_of_an_unknown_job_is_404(http):
    response = http.get(f"/jobs/{'0' * 32}", headers={"Prefer": "wait=5"})
    assert response.status_code == 404


def api_connections(url: str) -> int:
    """The API process's connections to Redis (it names them)."""
    with redis.Redis.from_url(url) as client:
        return sum(1 for entry in client.client_list() if entry["name"].startswith("arrayq-api"))


def test_many_long_polls_share_one_subscription(service, http):
    jobs = [submit(http, "sleep", {"seconds": 3})["id"] for _ in range(4)]
    before = api_connections(service.redis_url)

    async def poll_all() -> tuple[list[httpx.Response], int]:
        limits = httpx.Limits(max_connections=LONG_POLLS)
        async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as client:
            polls = [
                asyncio.ensure_future(
                    client.get(f"/jobs/{jobs[i % 4]}", headers={"Prefer": "wait=30"})
                )
                for i in range(LONG_POLLS)
            ]
            await asyncio.sleep(1.0)
            during = api_connections(service.redis_url)
            return await asyncio.gather(*polls), during

    responses, during = asyncio.run(poll_all())
    print(f"API connections to Redis: {before} before, {during} during {LONG_POLLS} long polls")
    # the async pool's few connections at most, however many requests wait
    assert during - before <= ASYNC_POOL_CONNECTIONS
    assert all(response.status_code == 200 for response in responses)
    assert {response.json()["status"] for response in responses} == {"succeeded"}
