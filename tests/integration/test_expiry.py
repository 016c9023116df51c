"""Expiry: a job past its `ttl_seconds` answers 410 on every route of the job for
the tombstone's lifetime, then 404; other tenants and unknown ids get 404."""

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import numpy as np
import pytest

from arrayq.client.processes import wait_until
from arrayq.storage import keys
from tests.support.faults import result_files
from tests.support.jobs import array_json, wait_for
from tests.support.service import Service, start_service

ALICE = {"Authorization": "Bearer ka"}
BOB = {"Authorization": "Bearer kb"}
TOMBSTONE_SECONDS = 4
RESULT_TTL_SECONDS = 3600


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(
        tmp_path_factory.mktemp("expiry"),
        workers=1,
        extra_env={
            "ARRAYQ_API_KEYS": "ka:alice,kb:bob",
            "ARRAYQ_TOMBSTONE_TTL_SECONDS": str(TOMBSTONE_SECONDS),
            "ARRAYQ_RESULT_TTL_SECONDS": str(RESULT_TTL_SECONDS),
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def alice(service: Service) -> Iterator[httpx.Client]:
    with service.client(headers=ALICE) as client:
        yield client


@pytest.fixture
def bob(service: Service) -> Iterator[httpx.Client]:
    with service.client(headers=BOB) as client:
        yield client


def run_svd(http: httpx.Client, **extra: object) -> dict:
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(3))}, "cache": False, **extra}
    response = http.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    job = wait_for(http, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def unix(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def job_routes(http: httpx.Client, job_id: str) -> list[tuple[str, str]]:
    """Every (method, path) the API has under /jobs/{job_id}, from its OpenAPI."""
    paths = http.get("/openapi.json").json()["paths"]
    found = []
    for path, methods in paths.items():
        if not path.startswith("/jobs/{job_id}"):
            continue
        concrete = path.replace("{job_id}", job_id).replace("{name}", "result")
        concrete = concrete.replace("{key}", "zarr.json").replace("{path}", "zarr.json")
        found.extend((method.upper(), concrete) for method in methods)
    if ("GET", f"/jobs/{job_id}/result") in found:
        found.append(("HEAD", f"/jobs/{job_id}/result"))
    return found


def test_expired_job_answers_410_everywhere_then_404(service, alice, bob):
    job = run_svd(alice, ttl_seconds=2)
    assert abs(unix(job["expires_at"]) - unix(job["finished_at"]) - 2) < 0.5, job
    assert alice.get(f"/jobs/{job['id']}/result").status_code == 200
    assert any(item["id"] == job["id"] for item in alice.get("/jobs").json()["items"])
    assert result_files(service, job["id"])

    time.sleep(max(unix(job["expires_at"]) - time.time(), 0) + 0.1)
    routes = job_routes(alice, job["id"])
    assert len(routes) >= 6, routes
    for method, path in routes:
        response = alice.request(method, path)
        assert response.status_code == 410, (method, path, response.text)
        if method != "HEAD":
            body = response.json()
            assert body["error"]["type"] == "expired", body
            assert body["expired_at"] == job["expires_at"], body
        assert bob.request(method, path).status_code == 404, (method, path)
    assert all(item["id"] != job["id"] for item in alice.get("/jobs").json()["items"])
    unknown = keys.new_id()
    assert alice.get(f"/jobs/{unknown}").status_code == 404

    wait_until(lambda: not result_files(service, job["id"]), 15, "the expired objects deleted")
    time.sleep(max(unix(job["expires_at"]) + TOMBSTONE_SECONDS - time.time(), 0) + 0.2)
    assert alice.get(f"/jobs/{job['id']}").status_code == 404


def test_default_lifetime_is_the_result_ttl(alice):
    job = run_svd(alice)
    assert abs(unix(job["expires_at"]) - unix(job["finished_at"]) - RESULT_TTL_SECONDS) < 1


def test_queued_and_running_jobs_have_no_expiry_yet(alice):
    response = alice.post("/jobs", json={"op": "sleep", "params": {"seconds": 0.5}})
    assert response.json()["expires_at"] is None
    job = wait_for(alice, response.json()["id"])
    assert job["expires_at"] is not None


@pytest.mark.parametrize("ttl", [0, -1, RESULT_TTL_SECONDS + 1, "soon", 1.5])
def test_ttl_outside_its_range_is_refused(alice, ttl):
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "ttl_seconds": ttl}
    response = alice.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] in {"validation_error", "invalid_ttl"}


def test_deleted_job_is_404_not_410(alice):
    job = run_svd(alice, ttl_seconds=60)
    assert alice.delete(f"/jobs/{job['id']}").status_code == 204
    response = alice.get(f"/jobs/{job['id']}")
    assert response.status_code == 404, response.text
