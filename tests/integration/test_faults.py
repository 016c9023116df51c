"""The re-queue bound with the default settings: a job whose worker died runs
again within 60 s, by the numbers and for real."""

import time

from arrayq.storage.settings import Settings
from arrayq.worker.celery_app import transport_options
from arrayq.worker.maintenance import sweep_seconds
from tests.support.faults import kill, own_service, running_on, wait_attempt
from tests.support.jobs import submit, wait_for

BOUND_SECONDS = 60


def test_default_settings_bound_every_re_queue_under_a_minute():
    defaults = Settings.model_construct()  # the declared defaults, no environment
    assert defaults.heartbeat_seconds * 3 <= defaults.heartbeat_timeout_seconds  # live is live
    # A run that died: its heartbeat goes stale, the next sweep re-queues it.
    assert defaults.heartbeat_timeout_seconds + sweep_seconds(defaults) < BOUND_SECONDS
    # A message taken by a worker that died before claiming it: the broker gives
    # it back after the visibility timeout, at its next sweep.
    options = transport_options(defaults)
    redelivery = options["visibility_timeout"] + options["unacked_restore_interval"]
    assert options["unacked_restore_throttle"] == 1 and redelivery < BOUND_SECONDS
    # A message lost outright: its job is queued again after a visibility timeout.
    assert defaults.visibility_timeout_seconds + sweep_seconds(defaults) < BOUND_SECONDS


def test_job_of_a_killed_worker_runs_again_within_a_minute_by_default(tmp_path):
    with own_service(tmp_path) as service, service.client() as http:
        job_id = submit(http, "sleep", {"seconds": 3})["id"]
        victim = running_on(service, http, job_id)
        kill(victim.pid)
        killed_at = time.monotonic()

        rerun = wait_attempt(http, job_id, 2, timeout=BOUND_SECONDS + 30)
        delay = time.monotonic() - killed_at
        print(f"default settings: attempt 2 started {delay:.1f} s after the kill")
        assert rerun["attempts"] == 2 and delay < BOUND_SECONDS
        job = wait_for(http, job_id)
        assert job["status"] == "succeeded" and job["attempts"] == 2
