"""Redis restarted under load: the API answers 503 while it is down, and afterwards
every job ends and the same worker processes go on consuming."""

import time

import numpy as np

from tests.support.faults import FAST_HEARTBEAT, own_service, restart_redis, wait_status
from tests.support.jobs import array_json, result_array, run, submit, wait_for


def test_redis_restart_loses_no_job_and_workers_resume(tmp_path):
    with own_service(tmp_path, extra_env=FAST_HEARTBEAT) as service, service.client() as http:
        running = [submit(http, "sleep", {"seconds": 3})["id"] for _ in range(2)]
        queued = [submit(http, "scale", {"factor": i}, x=np.ones(2))["id"] for i in range(6)]
        for job_id in running:
            wait_status(http, job_id, {"running"})
        workers = [worker.pid for worker in service.workers]
        outage: dict[str, float] = {}

        def while_down() -> None:
            started = time.monotonic()
            body = {"op": "scale", "inputs": {"x": array_json(np.ones(2))}}
            response = http.post("/jobs", json=body)
            outage["latency"] = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] == "redis_unavailable"
            assert http.get("/readyz").status_code == 503
            time.sleep(4)  # the running jobs end while Redis is away

        restart_redis(service, while_down)
        print(f"POST /jobs answered 503 in {outage['latency']:.2f} s while Redis was down")
        assert outage["latency"] < 5

        finished = [wait_for(http, job_id, timeout=90) for job_id in running + queued]
        assert [job["status"] for job in finished] == ["succeeded"] * len(finished)
        print("attempts after the restart:", [job["attempts"] for job in finished])
        # A job that ended while Redis was away is recorded by its own run: no second run.
        assert [job["attempts"] for job in finished] == [1] * len(finished)
        after = [run(http, "scale", {"factor": 10}, x=np.ones(2)) for _ in range(4)]
        assert all(result_array(http, job["id"]).tolist() == [10, 10] for job in after)
        assert [worker.pid for worker in service.workers if worker.alive()] == workers
        assert http.get("/readyz").status_code == 200
