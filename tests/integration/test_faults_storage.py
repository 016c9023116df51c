"""The S3 store goes away while a worker writes a result: the write is retried,
a store that stays away fails the job with a storage error, /readyz says so."""

import threading
import time

import pytest

from tests.support.faults import FAST_HEARTBEAT, own_service, wait_status
from tests.support.jobs import result_array, run, submit, wait_for
from tests.support.seaweed import seaweed_s3

pytestmark = pytest.mark.s3


def test_result_write_waits_out_a_short_outage_and_fails_on_a_long_one(tmp_path):
    with (
        seaweed_s3(tmp_path) as s3,
        own_service(
            tmp_path / "arrayq", storage_url=s3.url("faults"), extra_env=FAST_HEARTBEAT
        ) as service,
        service.client() as http,
    ):
        assert run(http, "sleep", {"seconds": 0})["status"] == "succeeded"

        # Away for a few seconds while the result is written: retried, then stored.
        job_id = submit(http, "sleep", {"seconds": 1.5})["id"]
        wait_status(http, job_id, {"running"})
        s3.stop()
        restarted = threading.Timer(3.0, s3.start)
        restarted.start()
        job = wait_for(http, job_id, timeout=60)
        restarted.join()
        assert job["status"] == "succeeded" and job["attempts"] == 1, job
        assert result_array(http, job_id) == 1.5

        # Away for good: the job fails with a storage error once the retries are spent.
        job_id = submit(http, "sleep", {"seconds": 1})["id"]
        wait_status(http, job_id, {"running"})
        s3.stop()
        stopped_at = time.monotonic()
        job = wait_for(http, job_id, timeout=90)
        print(f"result write given up {time.monotonic() - stopped_at:.1f} s after the store left")
        assert job["status"] == "failed", job
        assert job["error"]["type"] == "storage_unavailable"
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"].startswith("unavailable")

        s3.start()
        assert http.get("/readyz").status_code == 200
        assert run(http, "sleep", {"seconds": 0})["status"] == "succeeded"
