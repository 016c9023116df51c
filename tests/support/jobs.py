"""Factories and waits for jobs over HTTP."""

import time
from typing import Any

import httpx
import numpy as np

from arrayq.storage import codecs

FINAL = {"succeeded", "failed", "cancelled"}


def array_json(array: np.ndarray, *, base64: bool = False) -> dict[str, Any]:
    import orjson

    encoded = codecs.encode_array_json_base64(array) if base64 else codecs.encode_array_json(array)
    return orjson.loads(encoded)


def submit(
    http: httpx.Client,
    op: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    *,
    cache: bool = True,
    **inputs: np.ndarray,
) -> dict[str, Any]:
    body = {
        "op": op,
        "params": params or {},
        "inputs": {k: array_json(v) for k, v in inputs.items()},
        "cache": cache,
    }
    response = http.post("/jobs", json=body, headers=headers)
    assert response.status_code in (201, 202), response.text  # 201: a cache hit
    return response.json()


def wait_for(
    http: httpx.Client, job_id: str, statuses: set[str] = FINAL, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        document = http.get(f"/jobs/{job_id}").json()
        if document["status"] in statuses:
            return document
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {document['status']} after {timeout}s")
        time.sleep(0.05)


def run(
    http: httpx.Client, op: str, params: dict[str, Any] | None = None, **inputs: np.ndarray
) -> dict[str, Any]:
    """Submit and wait; the job must succeed."""
    document = wait_for(http, submit(http, op, params, **inputs)["id"])
    assert document["status"] == "succeeded", document
    return document


def result_array(http: httpx.Client, job_id: str) -> np.ndarray:
    import orjson

    response = http.get(f"/jobs/{job_id}/result", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return codecs.decode_array_json(orjson.loads(response.content), max_bytes=1 << 30)
