"""Jobs that use other jobs' results, with real workers: references by output
and slice, chains that wait, failures and cancels down a chain."""

import time
from itertools import pairwise

import httpx
import numpy as np
import orjson
import pytest

from arrayq.client.processes import wait_until
from arrayq.storage import codecs
from tests.support.jobs import array_json, run, wait_for


@pytest.fixture
def http(service) -> httpx.Client:
    with service.client(follow_redirects=True) as client:
        yield client


def post(http: httpx.Client, op: str, params: dict | None = None, **inputs: object) -> dict:
    body = {"op": op, "params": params or {}, "inputs": inputs, "cache": False}
    response = http.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def result(http: httpx.Client, job_id: str) -> np.ndarray:
    response = http.get(f"/jobs/{job_id}/result", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return codecs.decode_array_json(orjson.loads(response.content), max_bytes=1 << 30)


def test_reference_by_output_and_slice(http):
    x = np.arange(16.0).reshape(4, 4)
    x = x + x.T
    eigh = run(http, "eigh", x=x)["id"]
    vectors = np.linalg.eigh(x)[1]
    part = post(http, "identity", x={"job": eigh, "output": "eigenvectors", "slice": "1:3,::2"})
    assert wait_for(http, part["id"])["status"] == "succeeded"
    np.testing.assert_array_equal(result(http, part["id"]), vectors[1:3, ::2])
    single = run(http, "scale", {"factor": 2.0}, x=np.arange(3.0))["id"]
    doubled = post(http, "scale", {"factor": 5.0}, x={"job": single})
    wait_for(http, doubled["id"])
    np.testing.assert_array_equal(result(http, doubled["id"]), np.arange(3.0) * 10)


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ({"job": "0" * 32}, "no job"),
        ({"job": "not-an-id"}, "no job"),
        ({"job": "EIGH"}, "several outputs"),
        ({"job": "EIGH", "output": "nope"}, "no output 'nope'"),
        ({"job": "EIGH", "output": "eigenvalues", "slice": "0:1,2"}, "parts"),
        ({"job": "EIGH", "output": "eigenvalues", "slice": "x"}, "malformed"),
        ({"job": "EIGH", "output": "eigenvalues", "extra": 1}, ""),
    ],
)
def test_bad_references_are_422_invalid_input(http, ref, needle):
    eigh = run(http, "eigh", x=np.eye(3))["id"]
    ref = {k: (eigh if v == "EIGH" else v) for k, v in ref.items()}
    response = http.post("/jobs", json={"op": "identity", "inputs": {"x": ref}})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == ("validation_error" if "extra" in ref else "invalid_input")
    assert needle in error["message"]


def test_a_chain_submitted_at_once_runs_in_order(http):
    first = post(http, "slow_range", {"seconds": 1.5, "n": 5})
    chain = [first]
    for factor in (2.0, 3.0, 4.0):
        chain.append(post(http, "scale", {"factor": factor}, x={"job": chain[-1]["id"]}))
    for previous, job in pairwise(chain):
        assert job["status"] == "queued" and job["waiting_for"] == [previous["id"]]
    assert http.get(f"/jobs/{chain[1]['id']}").json()["waiting_for"] == [first["id"]]
    twice = post(http, "matmul", a={"job": first["id"]}, b={"job": first["id"]})
    assert twice["waiting_for"] == [first["id"]]
    final = [wait_for(http, job["id"]) for job in chain]
    assert [job["status"] for job in final] == ["succeeded"] * 4
    assert all(job["attempts"] == 1 and job["waiting_for"] == [] for job in final)
    for previous, job in pairwise(final):
        assert job["started_at"] >= previous["finished_at"]
    np.testing.assert_array_equal(result(http, chain[-1]["id"]), np.arange(5.0) * 24)
    assert wait_for(http, twice["id"])["status"] == "succeeded"
    assert result(http, twice["id"]) == 30.0


def test_a_failure_in_a_chain_fails_everything_below(http):
    first = post(http, "slow_range", {"seconds": 1.0})
    broken = post(http, "explode", x={"job": first["id"]})
    below = post(http, "scale", x={"job": broken["id"]})
    further = post(http, "scale", x={"job": below["id"]})
    assert wait_for(http, first["id"])["status"] == "succeeded"
    assert wait_for(http, broken["id"])["status"] == "failed"
    for job, parent in ((below, broken), (further, below)):
        done = wait_for(http, job["id"], timeout=20)
        assert done["status"] == "failed" and done["attempts"] == 0 and done["started_at"] is None
        assert done["error"]["type"] == "dependency_failed"
        assert f"input job {parent['id']} failed" in done["error"]["message"]


def test_cancelling_a_job_in_a_chain(http):
    first = post(http, "slow_range", {"seconds": 1.5})
    middle = post(http, "scale", x={"job": first["id"]})
    below = post(http, "scale", x={"job": middle["id"]})
    assert http.delete(f"/jobs/{middle['id']}").status_code == 204  # a waiting job
    assert wait_for(http, middle["id"])["status"] == "cancelled"
    done = wait_for(http, below["id"], timeout=20)
    assert done["status"] == "failed" and done["attempts"] == 0
    assert done["error"] == {
        "type": "dependency_failed",
        "message": f"input job {middle['id']} was cancelled; this job did not run",
    }
    assert wait_for(http, first["id"])["status"] == "succeeded"  # above it: untouched


def test_a_reference_to_a_failed_job_is_refused(http):
    failed = wait_for(http, post(http, "fail")["id"])
    assert failed["status"] == "failed"
    response = http.post("/jobs", json={"op": "identity", "inputs": {"x": {"job": failed["id"]}}})
    assert response.status_code == 422 and response.json()["error"]["type"] == "invalid_input"
    inline = post(http, "identity", x=array_json(np.arange(2)))  # inputs of each kind mix
    assert wait_for(http, inline["id"])["status"] == "succeeded"


def test_a_failed_op_is_logged_with_its_traceback_and_not_as_a_success(service, http):
    job = wait_for(http, post(http, "fail", {"message": "no luck"})["id"])
    assert job["status"] == "failed" and "in fail" in job["error"]["traceback"]

    def logged() -> str:
        return "".join(path.read_text() for path in service.logs.glob("worker-*.log"))

    task = f"Task arrayq.run_job[{job['id']}]"
    wait_until(
        lambda: f"{task} ignored" in logged() or f"{task} succeeded" in logged(),
        10,
        "the task's final log line",
    )
    text = logged()
    assert "WARNING" in text and f"job {job['id']} failed: RuntimeError: no luck" in text
    assert f"{task} succeeded" not in text


@pytest.mark.parametrize("store", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_sliced_reference_on_each_store(request, store):
    backend = request.getfixturevalue("service" if store == "local" else "s3_service")
    with backend.client(follow_redirects=True) as http:
        x = np.arange(64.0).reshape(8, 8)
        x = x + x.T
        eigh = run(http, "eigh", x=x)["id"]
        part = post(http, "identity", x={"job": eigh, "output": "eigenvectors", "slice": "::3,1"})
        assert wait_for(http, part["id"])["status"] == "succeeded"
        np.testing.assert_array_equal(result(http, part["id"]), np.linalg.eigh(x)[1][::3, 1])


def test_a_result_a_waiting_job_needs_outlives_its_ttl(http):
    body = {"op": "slow_range", "params": {"seconds": 0.2, "n": 3}, "ttl_seconds": 1}
    short = http.post("/jobs", json={**body, "cache": False}).json()
    slow = post(http, "slow_range", {"seconds": 4.0, "n": 3})
    # `short` lives 1 s once final; the job below waits for `slow` well past that.
    body = {"op": "matmul", "inputs": {"a": {"job": short["id"]}, "b": {"job": slow["id"]}}}
    waiting = http.post("/jobs", json={**body, "cache": False}).json()
    assert waiting["status"] == "queued" and len(waiting["waiting_for"]) == 2
    time.sleep(2.5)
    assert http.get(f"/jobs/{short['id']}").status_code == 410  # expired for its owner
    done = wait_for(http, waiting["id"], timeout=30)
    assert done["status"] == "succeeded", done["error"]
    assert result(http, waiting["id"]) == 5.0  # [0, 1, 2] @ [0, 1, 2]
