"""A webhook delivery outlives the worker that was making it: the worker is
SIGKILLed while the receiver holds its request, and another worker makes it."""

import signal
import time

import numpy as np
import orjson

from arrayq import verify_signature
from arrayq.client.processes import wait_until
from tests.support.faults import kill, own_service, wait_workers
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
