"""Server-sent events fed by the API's one subscription: ids, Last-Event-ID, and
an `error` event (not a cut stream) when Redis goes away."""

import threading
import time

import httpx
import orjson
import pytest

from tests.support.faults import own_service, restart_redis
from tests.support.jobs import submit, wait_for


@pytest.fixture
def http(service) -> httpx.Client:
    with service.client() as client:
        yield client


def read_events(response: httpx.Response, until_final: bool = True) -> list[dict]:
    events, current = [], {}
    for line in response.iter_lines():
        if not line:
            if current:
                events.append(current)
                if until_final and current.get("event") == "error":
                    return events
                data = orjson.loads(current.get("data", "{}"))
                if until_final and data.get("status") in {"succeeded", "failed", "cancelled"}:
                    return events
            current = {}
            continue
        name, _, value = line.partition(":")
        if name:
            current[name] = value.strip()
    return events


def test_events_carry_ids_and_a_reconnect_resumes(http):
    job = submit(http, "sleep", {"seconds": 0.6})
    with http.stream("GET", f"/jobs/{job['id']}/events") as response:
        events = read_events(response)
    assert events[-1]["event"] == "status" and all(event["id"] for event in events)
    final = orjson.loads(events[-1]["data"])
    assert final["status"] == "succeeded"
    seen = http.get(f"/jobs/{job['id']}/events", headers={"Last-Event-ID": events[-1]["id"]})
    assert seen.status_code == 204  # nothing more: an EventSource stops reconnecting
    with http.stream(
        "GET", f"/jobs/{job['id']}/events", headers={"Last-Event-ID": events[0]["id"]}
    ) as response:
        again = read_events(response)
    assert [orjson.loads(event["data"])["status"] for event in again] == ["succeeded"]


def test_a_reconnect_with_the_current_state_gets_only_changes(http):
    job = submit(http, "sleep", {"seconds": 1.5})
    wait_for(http, job["id"], {"running"})
    with http.stream("GET", f"/jobs/{job['id']}/events") as response:
        first = read_events(response)
    with http.stream(
        "GET", f"/jobs/{job['id']}/events", headers={"Last-Event-ID": first[-1]["id"]}
    ) as response:
        assert read_events(response) == []  # the same final state: no event, stream closed


def test_killing_redis_ends_the_stream_with_an_error_event(tmp_path):
    with own_service(tmp_path, workers=1) as service, service.client() as http:
        job = submit(http, "sleep", {"seconds": 30})
        wait_for(http, job["id"], {"running"})
        opened = threading.Event()
        outcome: dict[str, object] = {}

        def follow() -> None:
            url = f"/jobs/{job['id']}/events"
            with service.client() as client, client.stream("GET", url) as response:
                opened.set()
                outcome["events"] = read_events(response)
                outcome["at"] = time.monotonic()

        reader = threading.Thread(target=follow)
        reader.start()
        assert opened.wait(10)
        time.sleep(0.3)

        def while_down() -> None:
            outcome["killed"] = time.monotonic()
            reader.join(15)

        restart_redis(service, while_down)
        events = outcome["events"]
        assert events[-1]["event"] == "error", events
        error = orjson.loads(events[-1]["data"])["error"]
        assert error["type"] == "redis_unavailable"
        assert outcome["at"] - outcome["killed"] < 5
        # the feed subscribes again once Redis is back
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = http.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=1"})
            if response.status_code == 200:
                break
            time.sleep(0.5)
        assert response.status_code == 200
