"""Chains and result writes under worker faults: a worker SIGKILLed while a
chain is in flight, and a zombie run (stopped, re-run elsewhere, woken up)."""

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from arrayq.client.processes import wait_until
from tests.support.faults import (
    FAST_HEARTBEAT,
    ensure_workers,
    kill,
    own_service,
    pool_child,
    result_files,
    running_on,
    wait_status,
    worker_log,
)
from tests.support.jobs import result_array, wait_for
from tests.support.service import Service


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tally") / "tally.txt"


@pytest.fixture(scope="module")
def shaky(tmp_path_factory: pytest.TempPathFactory, tally: Path) -> Iterator[Service]:
    env = {**FAST_HEARTBEAT, "ARRAYQ_VISIBILITY_TIMEOUT_SECONDS": "2"}
    env["ARRAYQ_TEST_TALLY_FILE"] = str(tally)
    with own_service(tmp_path_factory.mktemp("shaky"), extra_env=env) as service:
        yield service


@pytest.fixture
def http(shaky: Service) -> Iterator[httpx.Client]:
    ensure_workers(shaky, 2)
    with shaky.client() as client:
        yield client


def post(http: httpx.Client, op: str, params: dict, **inputs: object) -> dict:
    body = {"op": op, "params": params, "inputs": inputs, "cache": False}
    response = http.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def test_a_killed_worker_mid_chain_and_every_job_still_runs_once(shaky, http, tally):
    chain = [post(http, "slow_range", {"seconds": 0.5, "n": 4})]
    for token in (1, 2, 3):
        step = post(
            http, "counted_step", {"token": token, "seconds": 1.5}, x={"job": chain[-1]["id"]}
        )
        chain.append(step)
    victim = running_on(shaky, http, chain[2]["id"])  # the middle of the chain
    kill(pool_child(victim))
    kill(victim.pid)
    final = [wait_for(http, job["id"], timeout=90) for job in chain]
    assert [job["status"] for job in final] == ["succeeded"] * 4, final
    assert final[2]["attempts"] == 2 and final[3]["attempts"] == 1
    np.testing.assert_array_equal(result_array(http, chain[-1]["id"]), np.arange(4.0) + 3)
    # Each op ran to the end once: the killed run never got to its tally line.
    assert sorted(tally.read_text().split()) == ["1", "2", "3"]
    assert all(len(result_files(shaky, job["id"])) == 1 for job in chain)


def test_a_zombie_run_never_changes_the_succeeded_bytes(shaky, http):
    job_id = post(http, "slow_random", {"seconds": 4.0, "n": 1000})["id"]
    zombie = pool_child(running_on(shaky, http, job_id))
    kill(zombie, signal.SIGSTOP)
    try:
        done = wait_status(http, job_id, {"succeeded"}, timeout=60)
        assert done["attempts"] == 2  # re-run elsewhere after the heartbeat went stale
        settled = http.get(f"/jobs/{job_id}/result", params={"format": "npy"}).content
        files = result_files(shaky, job_id)
    finally:
        kill(zombie, signal.SIGCONT)
    gone = f"job {job_id} finished but no longer owned"
    stopped = f"job {job_id} stopped: cancelled"
    wait_until(lambda: gone in worker_log(shaky) or stopped in worker_log(shaky), 30, "the zombie")
    time.sleep(0.5)
    assert http.get(f"/jobs/{job_id}/result", params={"format": "npy"}).content == settled
    assert result_files(shaky, job_id) == files and len(files) == 1  # its own write deleted


@pytest.mark.slow
def test_a_slice_of_a_1_gib_result_is_read_without_loading_it(tmp_path):
    """The producer runs on one worker (queue long), the consumer on another
    (queue default) whose pool process has run nothing else: its peak RSS shows
    what reading a sliced reference costs."""
    with own_service(tmp_path / "big", workers=0) as service:
        service.start_worker("--queues", "long")
        service.start_worker("--queues", "default")
        ensure_workers(service, 2)
        with service.client() as http:
            big = post(http, "big_ones", {"nbytes": 1 << 30})
            started = time.monotonic()
            part = post(http, "peak_rss", {}, x={"job": big["id"], "slice": "1000:1010,::2"})
            assert part["waiting_for"] == [big["id"]]
            assert wait_for(http, part["id"], timeout=120)["status"] == "succeeded"
            peak_kb, total = result_array(http, part["id"]).tolist()
    print(
        f"1 GiB result, 10 x 2048 slice: consumer peak RSS {peak_kb / 1024:.0f} MiB, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert total == 10 * 2048
    assert peak_kb < 400 * 1024  # the whole file would be 1024 MiB
