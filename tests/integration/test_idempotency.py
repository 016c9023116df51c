"""Idempotency-Key over real HTTP: concurrent duplicates get the one job, and a
refused request does not consume its key."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from tests.support.jobs import array_json

DUPLICATES = 8
ROUNDS = 30


@pytest.fixture
def http(service) -> httpx.Client:
    with service.client() as client:
        yield client


def _post_together(url: str, body: dict, key: str) -> list[httpx.Response]:
    barrier = threading.Barrier(DUPLICATES)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30.0) as client:
            barrier.wait()
            return client.post("/jobs", json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(DUPLICATES) as pool:
        return list(pool.map(post, range(DUPLICATES)))


def test_concurrent_duplicates_all_get_the_one_job(service, http):
    for round_ in range(ROUNDS):
        body = {"op": "svd", "inputs": {"x": array_json(np.eye(2) * (round_ + 1))}, "cache": False}
        responses = _post_together(service.url, body, f"race-{time.time_ns()}")
        codes = sorted(response.status_code for response in responses)
        assert codes == [200] * (DUPLICATES - 1) + [202], [r.text for r in responses]
        ids = {response.json()["id"] for response in responses}
        assert len(ids) == 1
        assert http.get(f"/jobs/{ids.pop()}").status_code == 200


@pytest.mark.parametrize(
    ("refused", "status"),
    [
        ({"op": "random", "params": {"shape": [100000, 100000]}}, 413),
        ({"op": "svd", "inputs": {"x": {"upload": "0" * 32}}}, 404),
        ({"op": "svd", "inputs": {"x": {"dtype": "object", "shape": [1], "data": [1]}}}, 422),
    ],
)
def test_a_refused_request_does_not_consume_its_key(http, refused, status):
    headers = {"Idempotency-Key": f"refused-{time.time_ns()}"}
    assert http.post("/jobs", json=refused, headers=headers).status_code == status
    valid = {"op": "svd", "inputs": {"x": array_json(np.eye(3))}, "cache": False}
    first = http.post("/jobs", json=valid, headers=headers)
    assert first.status_code == 202, first.text
    again = http.post("/jobs", json=valid, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_a_key_bound_to_a_deleted_job_is_free_again(http):
    headers = {"Idempotency-Key": f"deleted-{time.time_ns()}"}
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "cache": False}
    first = http.post("/jobs", json=body, headers=headers).json()
    while http.get(f"/jobs/{first['id']}").json()["status"] not in {"succeeded", "failed"}:
        time.sleep(0.05)
    assert http.delete(f"/jobs/{first['id']}").status_code == 204
    second = http.post("/jobs", json=body, headers=headers)
    assert second.status_code == 202 and second.json()["id"] != first["id"]
