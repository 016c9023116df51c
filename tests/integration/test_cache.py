"""The result cache over real HTTP with real workers: a computation runs once per
tenant, a hit is a final job of its own with the same bytes and ETag."""

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from arrayq.client.processes import Managed, arrayq_command, http_answers, wait_until
from arrayq.storage.digests import cache_key
from tests.support.jobs import array_json, wait_for
from tests.support.service import Service, start_service

ALICE = {"Authorization": "Bearer key-alice"}
BOB = {"Authorization": "Bearer key-bob"}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory, runs_dir: Path) -> Iterator[Service]:
    env = {"ARRAYQ_API_KEYS": "key-alice:alice,key-bob:bob", "ARRAYQ_TEST_RUNS_DIR": str(runs_dir)}
    service = start_service(tmp_path_factory.mktemp("cache"), workers=1, extra_env=env)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def http(cached) -> Iterator[httpx.Client]:
    with cached.client(headers=ALICE) as client:
        yield client


def tag() -> str:
    return f"t{time.time_ns()}"


def runs(runs_dir: Path, op: str, name: str) -> int:
    path = runs_dir / f"{op}-{name}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def post(http: httpx.Client, op: str, params: dict, headers=None, **inputs) -> httpx.Response:
    body = {"op": op, "params": params, "inputs": inputs}
    return http.post("/jobs", json=body, headers=headers)


def computed(http: httpx.Client, op: str, params: dict, **inputs) -> dict:
    response = post(http, op, params, **inputs)
    assert response.status_code == 202, response.text
    job = wait_for(http, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def npy(http: httpx.Client, job_id: str) -> httpx.Response:
    response = http.get(f"/jobs/{job_id}/result", params={"format": "npy"})
    assert response.status_code == 200, response.text
    return response


def test_the_same_job_twice_runs_once(http, runs_dir):
    name, x = tag(), array_json(np.arange(6.0).reshape(2, 3))
    first = computed(http, "counted", {"tag": name}, x=x)
    hit = post(http, "counted", {"tag": name}, x=x)
    assert hit.status_code == 201, hit.text
    assert hit.headers["location"] == f"/jobs/{hit.json()['id']}"
    job = hit.json()
    assert job["id"] != first["id"]
    assert (job["status"], job["attempts"], job["cached_from"]) == ("succeeded", 0, first["id"])
    assert job["result"] == first["result"]
    assert runs(runs_dir, "counted", name) == 1
    a, b = npy(http, first["id"]), npy(http, job["id"])
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    json_a = http.get(f"/jobs/{first['id']}/result", params={"format": "json"})
    json_b = http.get(f"/jobs/{job['id']}/result", params={"format": "json"})
    assert json_a.content == json_b.content and json_a.headers["etag"] == json_b.headers["etag"]
    again = post(http, "counted", {"tag": name}, x=x).json()
    assert again["cached_from"] == first["id"]  # never another hit


def test_defaults_filled_in_share_the_entry(http):
    x = array_json(np.ones(3))
    first = computed(http, "scale", {"factor": 2.0}, x=x)
    hit = post(http, "scale", {}, x=x)
    assert hit.status_code == 201 and hit.json()["cached_from"] == first["id"]


def test_each_difference_is_a_run(http, runs_dir):
    name = tag()
    base = np.linspace(0, 1, 8)
    computed(http, "counted", {"tag": name}, x=array_json(base))
    flipped = base.copy()
    flipped.view(np.uint64)[3] ^= 1  # one bit
    computed(http, "counted", {"tag": name}, x=array_json(flipped))
    computed(http, "counted", {"tag": name}, x=array_json(base.astype(np.float32)))
    body = {"op": "counted", "params": {"tag": name}, "inputs": {"x": array_json(base)}}
    response = http.post("/jobs", json={**body, "cache": False})
    assert response.status_code == 202
    wait_for(http, response.json()["id"])
    assert runs(runs_dir, "counted", name) == 4
    assert http.post("/jobs", json=body).status_code == 201


def test_ops_that_are_not_cached_run_every_time(http, runs_dir):
    name = tag()
    for _ in range(2):
        computed(http, "uncached", {"tag": name})
    assert runs(runs_dir, "uncached", name) == 2
    ops = {op["name"]: op for op in http.get("/ops").json()}
    assert (ops["uncached"]["cache"], ops["sleep"]["cache"], ops["counted"]["cache"]) == (
        False,
        False,
        True,
    )
    assert ops["counted_v2"]["version"] == "2" and ops["counted"]["version"] == "1"


def test_random_is_cached_only_with_a_seed(http):
    unseeded = [computed(http, "random", {"shape": [4]}) for _ in range(2)]
    assert npy(http, unseeded[0]["id"]).content != npy(http, unseeded[1]["id"]).content
    seed = time.time_ns() % 2**31
    first = computed(http, "random", {"shape": [4], "seed": seed})
    hit = post(http, "random", {"shape": [4], "seed": seed})
    assert hit.status_code == 201 and hit.json()["cached_from"] == first["id"]


def test_no_hit_across_tenants(cached, http, runs_dir):
    name, x = tag(), array_json(np.ones(4))
    computed(http, "counted", {"tag": name}, x=x)
    with cached.client(headers=BOB) as bob:
        for_bob = computed(bob, "counted", {"tag": name}, x=x)
        assert for_bob["cached_from"] is None
        assert runs(runs_dir, "counted", name) == 2
        assert post(bob, "counted", {"tag": name}, x=x).status_code == 201


def test_a_hit_outlives_its_deleted_source(http):
    x = array_json(np.arange(5.0))
    name = tag()
    source = computed(http, "counted", {"tag": name}, x=x)
    hit = post(http, "counted", {"tag": name}, x=x).json()
    expected = npy(http, source["id"]).content
    assert http.delete(f"/jobs/{source['id']}").status_code == 204
    assert npy(http, hit["id"]).content == expected
    # the entry named the deleted job: the next request computes again
    assert post(http, "counted", {"tag": name}, x=x).status_code == 202


def test_an_upload_and_the_same_array_inline_share_the_entry(http, runs_dir):
    name = tag()
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    first = computed(http, "counted", {"tag": name}, x=array_json(array))
    buffer = io.BytesIO()
    np.save(buffer, array)
    upload = http.post(
        "/uploads", content=buffer.getvalue(), headers={"Content-Type": "application/x-npy"}
    )
    assert upload.status_code == 201, upload.text
    hit = post(http, "counted", {"tag": name}, x={"upload": upload.json()["id"]})
    assert hit.status_code == 201 and hit.json()["cached_from"] == first["id"]
    assert runs(runs_dir, "counted", name) == 1


def test_hits_are_counted_in_metrics(http):
    x = array_json(np.full(2, 7.0))
    computed(http, "counted_v2", {"tag": tag()}, x=x)
    name = tag()
    computed(http, "counted_v2", {"tag": name}, x=x)
    post(http, "counted_v2", {"tag": name}, x=x)
    metrics = http.get("/metrics").text
    line = next(row for row in metrics.splitlines() if row.startswith("arrayq_cache_hits_total"))
    assert 'op="counted_v2"' in metrics and float(line.rsplit(" ", 1)[1]) >= 1


def test_a_new_op_version_computes_again(cached, http, runs_dir):
    name, x = tag(), array_json(np.ones(2))
    computed(http, "versioned", {"tag": name}, x=x)
    assert post(http, "versioned", {"tag": name}, x=x).status_code == 201
    restart_api(cached, {"ARRAYQ_TEST_OP_VERSION": "2"})
    with cached.client(headers=ALICE) as fresh:
        assert fresh.get("/ops/versioned").json()["version"] == "2"
        computed(fresh, "versioned", {"tag": name}, x=x)
    assert runs(runs_dir, "versioned", name) == 2


def restart_api(service: Service, env: dict[str, str]) -> None:
    service.api.stop(timeout=15)
    service.env = {**service.env, **env}
    service.api = Managed(
        "api", service.api.argv, env=service.env, log_path=service.api.log_path
    ).start()
    wait_until(lambda: http_answers(f"{service.url}/healthz"), 30, "the API")
    assert service.api.argv[: len(arrayq_command("api"))] == arrayq_command("api")


def test_the_key_covers_op_version_params_and_inputs():
    base = cache_key("op", "1", {"a": 1}, {"x": "d1"})
    assert base == cache_key("op", "1", {"a": 1}, {"x": "d1"})
    others = [
        cache_key("other", "1", {"a": 1}, {"x": "d1"}),
        cache_key("op", "2", {"a": 1}, {"x": "d1"}),
        cache_key("op", "1", {"a": 2}, {"x": "d1"}),
        cache_key("op", "1", {"a": 1}, {"x": "d2"}),
        cache_key("op", "1", {"a": 1}, {"y": "d1"}),
    ]
    assert base not in others and len(set(others)) == len(others)


@pytest.mark.s3
def test_a_hit_on_s3_is_a_server_side_copy(s3_service):
    with s3_service.client() as http:
        name, x = tag(), array_json(np.arange(4.0))
        source = computed(http, "counted", {"tag": name}, x=x)
        hit = post(http, "counted", {"tag": name}, x=x)
        assert hit.status_code == 201 and hit.json()["cached_from"] == source["id"]
        streamed = [
            http.get(f"/jobs/{job}/result", params={"format": "npy", "redirect": "false"})
            for job in (source["id"], hit.json()["id"])
        ]
        assert streamed[0].content == streamed[1].content
        assert streamed[0].headers["etag"] == streamed[1].headers["etag"]
        assert http.delete(f"/jobs/{source['id']}").status_code == 204
        again = http.get(f"/jobs/{hit.json()['id']}/result", params={"format": "json"})
        assert again.status_code == 200 and again.json()["data"] == [1.0, 2.0, 3.0, 4.0]
