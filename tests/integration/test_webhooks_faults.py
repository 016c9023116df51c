"""A webhook delivery outlives the worker that was making it (SIGKILLed while
the receiver holds its request: another worker makes it) and a Redis restart."""

import signal
import time

import numpy as np
import orjson

from arrayq import verify_signature
from arrayq.client.processes import wait_until
from tests.support.faults import kill, own_service, restart_redis, wait_workers
from tests.support.jobs import array_json, wait_for
from tests.support.webhook_receiver import HANG, receiver

SECRET = "whsec-faults"
ENV = {"ARRAYQ_WEBHOOK_SECRET": SECRET, "ARRAYQ_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}


def test_a_delivery_whose_worker_dies_is_made_by_another(tmp_path):
    with receiver() as sink, own_service(tmp_path, workers=1, extra_env=ENV) as service:
        url = sink.answer("/slow", HANG, 200)
        body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "callback": {"url": url}}
        with service.client() as http:
            job = http.post("/jobs", json=body).json()
            assert wait_for(http, job["id"])["status"] == "succeeded"
            (first,) = sink.wait_requests("/slow", 1)  # held by the receiver
            victim = service.workers[0]
            kill(victim.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_until(lambda: not victim.alive(), 15, "the killed worker gone")
            sink.released.set()
            service.start_worker()
            wait_workers(service, 1)
            first, second = sink.wait_requests("/slow", 2)
            print(f"tried again by another worker {second.at - killed_at:.1f} s after the kill")
            assert first.headers["ArrayQ-Delivery"] == second.headers["ArrayQ-Delivery"]
            assert verify_signature(SECRET, second.headers, second.body)
            assert orjson.loads(second.body)["id"] == job["id"]

            def delivered() -> bool:
                state = http.get(f"/jobs/{job['id']}").json()["callback"]["deliveries"]
                return state["succeeded"]["status"] == "delivered"

            wait_until(delivered, 30, "the delivery recorded")
            state = http.get(f"/jobs/{job['id']}").json()["callback"]["deliveries"]["succeeded"]
            assert state == {"status": "delivered", "attempts": 2, "last_status_code": 200}
            assert len(sink.requests("/slow")) == 2


def test_a_pending_delivery_survives_a_redis_restart(tmp_path):
    env = {**ENV, "ARRAYQ_WEBHOOK_RETRY_SECONDS": "0.5", "ARRAYQ_WEBHOOK_MAX_ATTEMPTS": "30"}
    with receiver() as sink, own_service(tmp_path, workers=1, extra_env=env) as service:
        url = sink.answer("/later", 503)
        body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "callback": {"url": url}}
        with service.client() as http:
            job = http.post("/jobs", json=body).json()
            sink.wait_requests("/later", 1)
            restart_redis(service, lambda: time.sleep(1))
            tries = len(sink.requests("/later"))
            sink.answer("/later", 200)

            def delivered() -> bool:
                response = http.get(f"/jobs/{job['id']}")
                state = response.json()["callback"]["deliveries"] if response.is_success else {}
                return state.get("succeeded", {}).get("status") == "delivered"

            wait_until(delivered, 60, "the delivery made after the restart")
        posts = sink.requests("/later")
        assert len(posts) > tries and len({p.headers["ArrayQ-Delivery"] for p in posts}) == 1
        print(f"{len(posts)} tries, {tries} before the restart")
