"""API keys and tenants, request limits and rate limiting, against real services."""

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import redis

from arrayq.api import signing
from arrayq.api.jobs import decode_cursor
from arrayq.client.processes import Managed, arrayq_command, free_port, http_answers, wait_until
from arrayq.storage import keys
from tests.support.jobs import array_json, wait_for
from tests.support.service import Service, start_service

ALICE = {"Authorization": "Bearer ka"}
BOB = {"Authorization": "Bearer kb"}
MAX_INPUT_BYTES = 1 << 20
MAX_JSON_VALUES = 10_000
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/files/{job_id}", "/files/{job_id}/{name}"}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(
        tmp_path_factory.mktemp("keyed"),
        workers=1,
        extra_env={
            "ARRAYQ_API_KEYS": "ka:alice,kb:bob",
            "ARRAYQ_MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
            "ARRAYQ_MAX_JSON_VALUES": str(MAX_JSON_VALUES),
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http(keyed) -> Iterator[httpx.Client]:
    with keyed.client() as client:
        yield client


def run_as(http: httpx.Client, headers: dict[str, str], x: np.ndarray) -> dict:
    body = {"op": "svd", "inputs": {"x": array_json(x)}, "cache": False}
    response = http.post("/jobs", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    with httpx.Client(base_url=str(http.base_url), headers=headers) as client:
        return wait_for(client, job_id)


@pytest.fixture(scope="module")
def alice_job(keyed) -> dict:
    with keyed.client() as client:
        return run_as(client, ALICE, np.diag([3.0, 2.0, 1.0]))


@pytest.fixture(scope="module")
def bob_job(keyed) -> dict:
    with keyed.client() as client:
        return run_as(client, BOB, np.diag([6.0, 5.0]))


def expect_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == error_type


# API keys


def keyed_operations(http: httpx.Client, job_id: str) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI schema that is not public, ids filled in."""
    spec = http.get("/openapi.json").json()
    operations = []
    for template, methods in spec["paths"].items():
        if template in PUBLIC_PATHS:
            continue
        path = template.replace("{job_id}", job_id).replace("{name}", "svd")
        operations += [(method.upper(), path) for method in methods]
    return operations


def test_every_route_but_the_public_ones_needs_a_key(http, alice_job):
    operations = keyed_operations(http, alice_job["id"])
    assert ("POST", "/jobs") in operations and ("POST", "/uploads") in operations
    for method, path in operations:
        response = http.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        if method != "HEAD":
            assert response.json()["error"]["type"] == "unauthorized", (method, path)


@pytest.mark.parametrize(
    "authorization",
    ["ka", "Basic a2E6", "Token ka", "Bearer", "Bearer k", "Bearer kaa", "Bearer KA"],
)
def test_missing_or_wrong_credentials_are_401(http, authorization):
    response = http.get("/jobs", headers={"Authorization": authorization})
    expect_error(response, 401, "unauthorized")


def test_the_scheme_is_case_insensitive(http):
    assert http.get("/jobs", headers={"Authorization": "bearer ka"}).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
def test_health_and_api_docs_are_public(http, path):
    assert http.get(path).status_code == 200


# tenants


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/result"),
        ("HEAD", "/result"),
        ("GET", "/result?format=npy"),
        ("GET", "/result/url"),
        ("GET", "/events"),
        ("DELETE", ""),
    ],
)
def test_another_tenants_job_is_not_found(http, alice_job, method, suffix):
    response = http.request(method, f"/jobs/{alice_job['id']}{suffix}", headers=BOB)
    assert response.status_code == 404
    if method != "HEAD":
        assert response.json()["error"]["type"] == "not_found"
    mine = http.get(f"/jobs/{alice_job['id']}", headers=ALICE).json()
    assert mine == alice_job
    result = http.get(f"/jobs/{alice_job['id']}/result", headers=ALICE).json()
    assert result["data"] == [3.0, 2.0, 1.0]


def test_listing_shows_only_the_callers_jobs(http, alice_job, bob_job):
    alice_ids = {job["id"] for job in http.get("/jobs", headers=ALICE).json()["items"]}
    bob_ids = {job["id"] for job in http.get("/jobs", headers=BOB).json()["items"]}
    assert alice_job["id"] in alice_ids and bob_job["id"] not in alice_ids
    assert bob_job["id"] in bob_ids and alice_job["id"] not in bob_ids


def test_another_tenants_upload_is_not_found(http):
    buffer = io.BytesIO()
    np.save(buffer, np.eye(2))
    upload = http.post(
        "/uploads",
        content=buffer.getvalue(),
        headers={**BOB, "Content-Type": "application/x-npy"},
    )
    assert upload.status_code == 201, upload.text
    body = {"op": "svd", "inputs": {"x": {"upload": upload.json()["id"]}}}
    expect_error(http.post("/jobs", json=body, headers=ALICE), 404, "not_found")
    assert http.post("/jobs", json=body, headers=BOB).status_code == 202


def test_idempotency_keys_belong_to_their_tenant(http):
    headers = {"Idempotency-Key": f"shared-{time.time_ns()}"}
    first = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "cache": False}
    other = {"op": "svd", "inputs": {"x": array_json(np.eye(3))}, "cache": False}
    created = http.post("/jobs", json=first, headers={**ALICE, **headers})
    assert created.status_code == 202
    assert http.post("/jobs", json=other, headers={**BOB, **headers}).status_code == 202
    replay = http.post("/jobs", json=first, headers={**ALICE, **headers})
    assert replay.status_code == 200 and replay.json()["id"] == created.json()["id"]
    mismatch = http.post("/jobs", json=other, headers={**ALICE, **headers})
    expect_error(mismatch, 422, "idempotency_mismatch")


def test_signed_link_needs_no_key_and_expires(http, keyed, alice_job):
    link = http.get(f"/jobs/{alice_job['id']}/result/url", headers=ALICE).json()
    download = httpx.get(link["url"])
    assert download.status_code == 200
    assert np.load(io.BytesIO(download.content), allow_pickle=False).tolist() == [3.0, 2.0, 1.0]
    secret = redis.Redis.from_url(keyed.redis_url).get(keys.signing_secret_key())
    expired = int(time.time()) - 1
    signature = signing.sign(secret, alice_job["id"], expired)
    stale = httpx.get(f"{keyed.url}/files/{alice_job['id']}?exp={expired}&sig={signature}")
    expect_error(stale, 403, "forbidden")


# limits


def raw_exchange(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request head and part of a body on a raw socket, never finishing
    the body, and read the response that comes anyway."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        sock.sendall(head + body)
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(65536)
        header, _, content = response.partition(b"\r\n\r\n")
        while len(content) < content_length(header):
            content += sock.recv(65536)
    return int(header.split(b" ")[1]), content


def content_length(header: bytes) -> int:
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no Content-Length in {header!r}")


def post_head(extra: str) -> bytes:
    return (
        "POST /jobs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ka\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_declared_length_over_the_limit_is_refused_before_the_body(keyed):
    status, content = raw_exchange(keyed.url, post_head("Content-Length: 10000000000\r\n"))
    assert status == 413 and b'"too_large"' in content


def test_chunked_body_over_the_limit_is_refused_while_streaming(keyed):
    chunk = b"[" + b"0," * 32767 + b"0]"
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    body = framed * (MAX_INPUT_BYTES // len(chunk) + 2)  # no final 0-size chunk: never ends
    status, content = raw_exchange(keyed.url, post_head("Transfer-Encoding: chunked\r\n"), body)
    assert status == 413 and b'"too_large"' in content


def test_too_many_json_values_are_413(http):
    body = {"op": "random", "params": {"shape": [0] * (MAX_JSON_VALUES + 1)}}
    expect_error(http.post("/jobs", json=body, headers=ALICE), 413, "too_large")


@pytest.mark.parametrize(
    ("depth", "error_type"),
    [(65, "json_too_deep"), (1000, "json_too_deep"), (5000, "invalid_json")],
)
def test_deep_nesting_is_400(http, depth, error_type):
    data = "[" * depth + "1" + "]" * depth
    body = (
        f'{{"op": "svd", "inputs": {{"x": {{"dtype": "float64", "shape": [1], "data": {data}}}}}}}'
    )
    response = http.post(
        "/jobs", content=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    expect_error(response, 400, error_type)


def test_huge_declared_shape_is_413_before_any_allocation(http):
    x = {"dtype": "complex128", "shape": [2**40, 2**40], "data": []}
    response = http.post("/jobs", json={"op": "svd", "inputs": {"x": x}}, headers=ALICE)
    expect_error(response, 413, "too_large")


# rate limiting


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    """Two API processes on one Redis, 10 requests a minute per tenant, bursts of 3."""
    root: Path = tmp_path_factory.mktemp("limited")
    running = start_service(
        root,
        workers=0,
        extra_env={
            "ARRAYQ_API_KEYS": "ka:alice,kb:bob,kc:carol,kd:dave",
            "ARRAYQ_RATE_LIMIT_PER_MINUTE": "10",
            "ARRAYQ_RATE_LIMIT_BURST": "3",
        },
    )
    port = free_port()
    second = Managed(
        "api-2",
        arrayq_command("api", "--port", str(port)),
        env=running.env,
        log_path=root / "api-2.log",
    ).start()
    second_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_answers(f"{second_url}/healthz"), 30, "the second API")
        yield running, second_url
    finally:
        second.stop()
        running.stop()


def test_a_tenant_over_its_rate_gets_429_with_retry_after(limited):
    service, _ = limited
    carol = {"Authorization": "Bearer kc"}
    with service.client(headers=carol) as http:
        assert [http.get("/ops").status_code for _ in range(3)] == [200, 200, 200]
        refused = http.get("/jobs")
        expect_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 6
        expect_error(http.post("/jobs", json={"op": "nope"}), 429, "rate_limited")
        assert http.get("/healthz").status_code == 200
        assert http.get("/jobs", headers=BOB).status_code == 200
        time.sleep(int(http.get("/ops").headers["retry-after"]))
        assert http.get("/ops").status_code == 200


def test_requests_without_a_valid_key_get_401_not_429(limited):
    service, _ = limited
    with service.client() as http:
        for _ in range(5):
            expect_error(
                http.get("/ops", headers={"Authorization": "Bearer kx"}), 401, "unauthorized"
            )
        dave = {"Authorization": "Bearer kd"}
        assert [http.get("/ops", headers=dave).status_code for _ in range(3)] == [200] * 3


def test_the_count_is_shared_by_api_replicas(limited):
    service, second_url = limited
    with (
        service.client(headers=ALICE) as first,
        httpx.Client(base_url=second_url, headers=ALICE) as second,
    ):
        assert first.get("/ops").status_code == 200
        assert second.get("/ops").status_code == 200
        assert first.get("/ops").status_code == 200
        expect_error(second.get("/ops"), 429, "rate_limited")
        expect_error(first.get("/ops"), 429, "rate_limited")


def test_a_cursor_counts_only_the_callers_own_submissions(http):
    """Cursors are positions in the tenant's own sequence: alice's submissions
    between two of bob's leave no trace in bob's cursors."""

    def newest_cursor() -> str:
        page = http.get("/jobs", params={"limit": 1}, headers=BOB).json()
        return page["next_cursor"]

    run_as(http, BOB, np.eye(2))
    run_as(http, BOB, np.eye(2))
    before = newest_cursor()
    for _ in range(3):
        run_as(http, ALICE, np.eye(2))
    run_as(http, BOB, np.eye(2))
    after = newest_cursor()
    assert not before.isdigit() and not after.isdigit()
    assert decode_cursor(after) == decode_cursor(before) + 1
    older = http.get("/jobs", params={"limit": 1, "cursor": after}, headers=BOB).json()
    assert older["next_cursor"] == before
    # alice's own cursor cannot be replayed to learn anything of bob's list
    alice_cursor = http.get("/jobs", params={"limit": 1}, headers=ALICE).json()["next_cursor"]
    seen = http.get("/jobs", params={"cursor": alice_cursor}, headers=ALICE).json()["items"]
    bob_ids = {job["id"] for job in http.get("/jobs", headers=BOB).json()["items"]}
    assert not bob_ids & {job["id"] for job in seen}


def test_a_reference_to_another_tenants_job_reads_like_an_unknown_id(http, alice_job):
    def refer(job_id: str) -> httpx.Response:
        body = {"op": "identity", "inputs": {"x": {"job": job_id}}}
        return http.post("/jobs", json=body, headers=BOB)

    foreign, unknown = refer(alice_job["id"]), refer("0" * 32)
    expect_error(foreign, 422, "invalid_input")
    expect_error(unknown, 422, "invalid_input")
    assert foreign.json()["error"]["message"].replace(alice_job["id"], "ID") == (
        unknown.json()["error"]["message"].replace("0" * 32, "ID")
    )
    own = http.post(
        "/jobs", json={"op": "identity", "inputs": {"x": {"job": alice_job["id"]}}}, headers=ALICE
    )
    assert own.status_code == 202, own.text
