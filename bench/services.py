"""arrayq services for the benchmarks (the test suite's `start_service`) and jobs on them."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.service import Service, start_service

GIB = 1 << 30
BENCH_ENV = {
    "ARRAYQ_OPS_MODULES": "bench.ops",
    "ARRAYQ_MAX_RESULT_BYTES": str(2 * GIB),
    "ARRAYQ_MAX_INPUT_BYTES": str(2 * GIB),
}
FINAL = {"succeeded", "failed", "cancelled"}


@contextmanager
def running_service(
    root: Path, *, workers: int = 1, storage_url: str | None = None
) -> Iterator[Service]:
    service = start_service(root, workers=workers, storage_url=storage_url, extra_env=BENCH_ENV)
    try:
        yield service
    finally:
        service.stop()


def submit(http: httpx.Client, op: str, params: dict[str, Any] | None = None) -> str:
    response = http.post("/jobs", json={"op": op, "params": params or {}})
    if response.status_code not in (201, 202):
        raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text}")
    return response.json()["id"]


def wait_succeeded(http: httpx.Client, job_id: str, timeout: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = http.get(f"/jobs/{job_id}").json()
        if document["status"] == "succeeded":
            return document
        if document["status"] in FINAL:
            raise RuntimeError(f"job {job_id} {document['status']}: {document['error']}")
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f}s")


def random_result(service: Service, nbytes: int) -> str:
    """The id of a succeeded `random` job whose float64 result takes `nbytes`."""
    with service.client() as http:
        job_id = submit(http, "random", {"shape": [nbytes // 8], "seed": 1})
        wait_succeeded(http, job_id)
    return job_id


def local_result_file(service: Service, job_id: str) -> Path:
    """Where a local-storage service keeps the `.npy` result of `job_id`."""
    root = Path(service.storage_url.removeprefix("file://"))
    # Each run writes under results/<tenant>/<job id>/<run id>/; older results were
    # results/<tenant>/<job id>.npy.
    found = [
        path
        for path in root.rglob("*.npy")
        if path.name == f"{job_id}.npy" or job_id in path.relative_to(root).parts
    ]
    if len(found) != 1:
        raise FileNotFoundError(f"expected one .npy of job {job_id} under {root}, found {found}")
    return found[0]


def delete_job(service: Service, job_id: str) -> None:
    with service.client() as http:
        http.delete(f"/jobs/{job_id}")
