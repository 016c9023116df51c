"""Webhooks end to end: real API, workers and Redis, and a receiver on loopback
(allowed by ARRAYQ_WEBHOOK_ALLOW_HOSTS=127.0.0.1)."""

import itertools
import time
from collections.abc import Iterator

import httpx
import numpy as np
import orjson
import pytest

from arrayq import Client, verify_signature
from arrayq.client.processes import wait_until
from tests.support.jobs import array_json, wait_for
from tests.support.service import Service, start_service
from tests.support.webhook_receiver import Receiver, receiver

SECRET = "whsec-integration"
RETRY_SECONDS = 0.5
MAX_ATTEMPTS = 4


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(
        tmp_path_factory.mktemp("webhooks"),
        extra_env={
            "ARRAYQ_WEBHOOK_SECRET": SECRET,
            "ARRAYQ_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "ARRAYQ_WEBHOOK_RETRY_SECONDS": str(RETRY_SECONDS),
            "ARRAYQ_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture
def http(hooks: Service) -> Iterator[httpx.Client]:
    with hooks.client() as client:
        yield client


def submit(http: httpx.Client, callback: object, op: str = "svd", **params: object) -> dict:
    body: dict = {"op": op, "params": params, "cache": False, "callback": callback}
    if op == "svd":
        body["inputs"] = {"x": array_json(np.eye(3))}
    response = http.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def delivery(http: httpx.Client, job_id: str, event: str, statuses: set[str]) -> dict:
    """The event's delivery state once it has one of `statuses`."""
    found: dict = {}

    def reached() -> bool:
        deliveries = http.get(f"/jobs/{job_id}").json()["callback"]["deliveries"]
        found.update(deliveries.get(event) or {})
        return found.get("status") in statuses

    wait_until(reached, 60, f"the {event} delivery of job {job_id} {statuses}")
    return found


def test_each_event_is_one_signed_post_of_the_job(http, sink):
    url = sink.answer("/each", 200)
    job = submit(http, {"url": url, "events": ["running", "succeeded"]})
    assert job["callback"] == {"url": url, "events": ["running", "succeeded"], "deliveries": {}}
    assert wait_for(http, job["id"])["status"] == "succeeded"
    for event in ("running", "succeeded"):
        state = delivery(http, job["id"], event, {"delivered", "failed"})
        assert state == {"status": "delivered", "attempts": 1, "last_status_code": 200}
    time.sleep(2 * RETRY_SECONDS)  # nothing more comes
    posts = sink.requests("/each")
    assert sorted(p.headers["ArrayQ-Event"] for p in posts) == ["running", "succeeded"]
    assert len({p.headers["ArrayQ-Delivery"] for p in posts}) == 2
    for post in posts:
        assert verify_signature(SECRET, post.headers, post.body)
        assert not verify_signature("another-secret", post.headers, post.body)
        assert post.headers["Content-Type"] == "application/json"
        document = orjson.loads(post.body)
        assert document["id"] == job["id"]
        assert document["status"] == post.headers["ArrayQ-Event"]  # the job at the event
        assert SECRET not in post.body.decode()
    final = next(p for p in posts if p.headers["ArrayQ-Event"] == "succeeded")
    assert orjson.loads(final.body)["result"]["shape"] == [3]
    assert SECRET not in http.get(f"/jobs/{job['id']}").text


def test_default_events_are_the_final_ones(http, sink):
    failed = submit(http, {"url": sink.answer("/failed", 200)}, op="fail", message="no")
    slow = submit(http, {"url": sink.answer("/cancelled", 200)}, op="sleep", seconds=30)
    wait_for(http, slow["id"], {"running"})
    assert http.delete(f"/jobs/{slow['id']}").status_code == 204
    for job, event in ((failed, "failed"), (slow, "cancelled")):
        assert delivery(http, job["id"], event, {"delivered"})["attempts"] == 1
        (post,) = sink.requests(f"/{event}")
        assert post.headers["ArrayQ-Event"] == event
        assert orjson.loads(post.body)["status"] == event
        assert set(http.get(f"/jobs/{job['id']}").json()["callback"]["deliveries"]) == {event}


def test_5xx_is_tried_again_with_one_delivery_id_and_doubling_pauses(http, sink):
    job = submit(http, {"url": sink.answer("/flaky", 500, 503, 200)})
    state = delivery(http, job["id"], "succeeded", {"delivered", "failed"})
    assert state == {"status": "delivered", "attempts": 3, "last_status_code": 200}
    posts = sink.requests("/flaky")
    assert len(posts) == 3
    assert len({p.headers["ArrayQ-Delivery"] for p in posts}) == 1
    assert all(verify_signature(SECRET, p.headers, p.body) for p in posts)
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    print(f"pauses between tries: {[round(g, 2) for g in gaps]} s")
    assert gaps[0] >= RETRY_SECONDS * 0.9 and gaps[1] >= 2 * RETRY_SECONDS * 0.9, gaps


def test_a_4xx_ends_the_delivery_after_one_try(http, sink):
    job = submit(http, {"url": sink.answer("/gone", 410)})
    state = delivery(http, job["id"], "succeeded", {"delivered", "failed"})
    assert state == {"status": "failed", "attempts": 1, "last_status_code": 410}
    time.sleep(3 * RETRY_SECONDS)
    assert len(sink.requests("/gone")) == 1


def test_tries_end_at_the_limit(http, sink):
    job = submit(http, {"url": sink.answer("/down", 503)})
    state = delivery(http, job["id"], "succeeded", {"delivered", "failed"})
    assert state == {"status": "failed", "attempts": MAX_ATTEMPTS, "last_status_code": 503}
    assert len(sink.requests("/down")) == MAX_ATTEMPTS


def test_a_redirect_is_not_followed(http, sink):
    job = submit(http, {"url": sink.answer("/moved", 302)})
    state = delivery(http, job["id"], "succeeded", {"delivered", "failed"})
    assert state == {"status": "failed", "attempts": 1, "last_status_code": 302}
    assert len(sink.requests("/moved")) == 1
    assert sink.requests("/elsewhere") == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/",
        "http://127.0.0.2:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.2]:{port}/",
        "garbage",
        "http://",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/",
    ],
)
def test_urls_the_service_may_not_reach_are_refused(http, sink, url):
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}}
    response = http.post("/jobs", json={**body, "callback": {"url": url.format(port=sink.port)}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "invalid_callback", response.text


def test_an_unknown_event_is_refused(http, sink):
    callback = {"url": sink.url("/x"), "events": ["succeeded", "finished"]}
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "callback": callback}
    response = http.post("/jobs", json=body)
    assert response.status_code == 422, response.text


def test_without_a_secret_callbacks_are_disabled(service, sink):
    with service.client() as client:
        body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}}
        response = client.post("/jobs", json={**body, "callback": {"url": sink.url("/")}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "callbacks_disabled"


def test_a_cache_hit_and_the_python_client_notify_too(hooks, sink):
    x = np.arange(6.0).reshape(2, 3)
    with Client(hooks.url) as client:
        first = client.submit("svd", x=x, wait=30)
        hit = client.submit("svd", x=x, callback=sink.answer("/hit", 200), wait=30)
        assert hit.document["cached_from"] == first.id
        assert hit.document["callback"]["events"] == ["succeeded", "failed", "cancelled"]
    (post,) = sink.wait_requests("/hit", 1)
    assert post.headers["ArrayQ-Event"] == "succeeded"
    assert orjson.loads(post.body)["cached_from"] == first.id
    assert verify_signature(SECRET, post.headers, post.body)


def test_metrics_count_deliveries_by_event_and_outcome(http, sink):
    job = submit(http, {"url": sink.answer("/counted", 200)})
    delivery(http, job["id"], "succeeded", {"delivered"})
    text = http.get("/metrics").text
    counted = {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("arrayq_webhook_deliveries_total{")
    }
    assert counted['event="succeeded",outcome="delivered"'] >= 1, text
    assert "arrayq_webhook_deliveries_pending " in text
