"""A worker told to stop (SIGTERM) with a long job running: after
ARRAYQ_WORKER_SHUTDOWN_SECONDS it hands the job back and exits, and another
worker starts it at once, long before the heartbeat timeout (30 s here) would."""

import signal
import time

from tests.support.faults import own_service, record, running_on, wait_attempt
from tests.support.jobs import result_array, submit, wait_for

SETTINGS = {"ARRAYQ_WORKER_SHUTDOWN_SECONDS": "1"}


def test_stopped_worker_hands_its_running_job_back_at_once(tmp_path):
    op, seconds = "sleep", 20
    with own_service(tmp_path, workers=2, extra_env=SETTINGS) as service, service.client() as http:
        job_id = submit(http, op, {"seconds": seconds})["id"]
        victim = running_on(service, http, job_id)
        first_run = record(service, job_id)["run_id"]
        victim.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()

        rerun = wait_attempt(http, job_id, 2, timeout=25)
        print(f"{op}: attempt 2 started {time.monotonic() - stopped_at:.1f} s after SIGTERM")
        assert rerun["attempts"] == 2 and time.monotonic() - stopped_at < 15, rerun
        assert record(service, job_id)["run_id"] != first_run
        assert victim.popen is not None
        assert victim.popen.wait(timeout=30) is not None
        print(f"{op}: the worker exited {time.monotonic() - stopped_at:.1f} s after SIGTERM")
        assert not record(service, job_id)["worker"].startswith(f"arrayq-{victim.pid}@")
        job = wait_for(http, job_id, timeout=60)
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        assert result_array(http, job_id) == float(seconds)
