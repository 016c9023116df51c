"""Slow and stalled request bodies: they must not freeze the API.

Raw sockets send a `.npy` header and part of the data, then stop. The API
must keep answering everything else fast, refuse a tenant's uploads past its
cap with 429, time the stalled bodies out, refuse an oversized Content-Length
before reading the body, and keep nothing of any of them."""

import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.test_bad_input_matrix import npy_bytes, npy_declaring
from tests.support.faults import own_service
from tests.support.jobs import array_json
from tests.support.service import Service

TENANTS = 10
CAP = 20  # 10 tenants x 20 = 200 stalled uploads, every tenant at its cap
IDLE = 12.0
KEYS = {f"key{i}": f"tenant{i}" for i in range(TENANTS)} | {"free": "free"}
SETTINGS = {
    "ARRAYQ_API_KEYS": ",".join(f"{key}:{tenant}" for key, tenant in KEYS.items()),
    "ARRAYQ_TENANT_MAX_UPLOADS": str(CAP),
    "ARRAYQ_BODY_IDLE_TIMEOUT_SECONDS": str(IDLE),
}
ROWS = 1 << 19  # a 4 MiB float64 array, of which 256 KiB are sent


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("slow")
    with own_service(root, workers=1, extra_env=SETTINGS) as service:
        yield service


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def port_of(service: Service) -> int:
    return int(service.url.rpartition(":")[2])


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


OPEN: list[socket.socket] = []


def raw_request(service: Service, head: str, body: bytes, key: str) -> socket.socket:
    """Send a request head and the first `body` bytes, and leave the socket open."""
    sock = socket.create_connection(("127.0.0.1", port_of(service)))
    OPEN.append(sock)
    lines = [head, "Host: test", f"Authorization: Bearer {key}", "", ""]
    sock.sendall("\r\n".join(lines).encode() + body)
    return sock


def stalled_upload(service: Service, key: str) -> socket.socket:
    header = npy_declaring((ROWS,))
    head = (
        "POST /uploads HTTP/1.1\r\nContent-Type: application/x-npy\r\n"
        f"Content-Length: {len(header) + ROWS * 8}"
    )
    return raw_request(service, head, header + bytes(256 << 10), key)


def answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = b""
    try:
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        pass
    return received


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def leftovers(service: Service) -> list[Path]:
    data = Path(service.storage_url.removeprefix("file://"))
    return [path for path in data.rglob("*") if path.is_file() and "uploads" in path.parts]


def timed(http: httpx.Client, method: str, url: str, **kwargs: object) -> float:
    started = time.perf_counter()
    response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert response.status_code < 300, response.text
    return time.perf_counter() - started


def test_stalled_uploads_freeze_nothing_and_time_out(slow):
    with slow.client(headers=auth("free")) as http:
        job = http.post("/jobs", json={"op": "svd", "inputs": {"x": array_json(np.eye(2))}})
        job_id = job.json()["id"]
        sockets = [stalled_upload(slow, f"key{i % TENANTS}") for i in range(TENANTS * CAP)]
        opened = time.monotonic()
        time.sleep(1.0)  # the API has taken every request head

        over = httpx.post(
            f"{slow.url}/uploads",
            content=npy_bytes(np.ones(4)),
            headers={**auth("key0"), "Content-Type": "application/x-npy"},
        )
        assert over.status_code == 429, over.text
        assert over.json()["error"]["type"] == "too_many_uploads"
        assert over.headers["retry-after"] == "1"

        small = {"op": "svd", "inputs": {"x": array_json(np.eye(3))}}
        npy = {"content": npy_bytes(np.ones(8)), "headers": {"Content-Type": "application/x-npy"}}
        latencies = []
        for _ in range(50):
            latencies.append(timed(http, "GET", f"/jobs/{job_id}"))
            latencies.append(timed(http, "GET", "/readyz"))
            latencies.append(timed(http, "POST", "/jobs", json=small))
            latencies.append(timed(http, "POST", "/uploads", **npy))
        assert time.monotonic() - opened < IDLE, "too slow to measure before the idle timeout"
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(
        f"200 stalled uploads: p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms"
    )
    assert p99 < 0.100

    answers = [answer(sock, timeout=IDLE + 15) for sock in sockets]
    for sock in sockets:
        sock.close()
    assert {status_of(raw) for raw in answers} == {408}, answers[0][:300]
    assert b'"body_timeout"' in answers[0]
    assert time.monotonic() - opened < IDLE + 20

    retry = httpx.post(
        f"{slow.url}/uploads",
        content=npy_bytes(np.ones(4)),
        headers={**auth("key0"), "Content-Type": "application/x-npy"},
    )
    assert retry.status_code == 201, retry.text
    assert len(leftovers(slow)) == 1 + 50  # the uploads that completed, nothing else


@pytest.mark.parametrize(
    ("head", "limit"),
    [
        ("POST /uploads HTTP/1.1\r\nContent-Type: application/x-npy", "upload"),
        ("POST /jobs HTTP/1.1\r\nContent-Type: application/json", "job"),
    ],
)
def test_content_length_over_the_limit_is_413_before_a_byte_is_read(slow, head, limit):
    sock = raw_request(slow, f"{head}\r\nContent-Length: {1 << 40}", b"", "key1")
    started = time.monotonic()
    raw = answer(sock, timeout=5)
    sock.close()
    assert status_of(raw) == 413, (limit, raw[:300])
    assert b'"too_large"' in raw
    assert time.monotonic() - started < 2


def test_stalled_job_body_times_out(slow):
    head = "POST /jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100"
    sock = raw_request(slow, head, b'{"op": "svd", ', "key2")
    started = time.monotonic()
    raw = answer(sock, timeout=IDLE + 10)
    sock.close()
    assert status_of(raw) == 408, raw[:300]
    assert b'"body_timeout"' in raw
    assert IDLE - 1 < time.monotonic() - started < IDLE + 8


def test_client_that_goes_away_mid_body_is_not_a_server_error(slow):
    before = (slow.logs / "api.log").read_text(errors="replace")
    for head in (
        "POST /uploads HTTP/1.1\r\nContent-Type: application/x-npy\r\nContent-Length: 4194432",
        "POST /jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100",
    ):
        sock = raw_request(slow, head, npy_declaring((ROWS,)) + bytes(1000), "key3")
        time.sleep(0.3)
        sock.close()
    time.sleep(1.0)
    with slow.client(headers=auth("key3")) as http:
        assert http.get("/readyz").status_code == 200
        upload = http.post(
            "/uploads", content=npy_bytes(np.ones(4)), headers={"Content-Type": "application/x-npy"}
        )
        assert upload.status_code == 201  # the slots of the gone clients are free again
    log = (slow.logs / "api.log").read_text(errors="replace")[len(before) :]
    assert "Traceback" not in log and "ClientDisconnect" not in log, log[-3000:]
    assert "Exception in ASGI application" not in log
