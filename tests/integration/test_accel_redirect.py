"""ARRAYQ_ACCEL_REDIRECT_PREFIX: with nginx in front, the API authorizes and nginx
sends the local result file (real nginx, real API, real workers)."""

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.jobs import submit, wait_for
from tests.support.nginx import ACCEL_PREFIX, Front, nginx_binary, start_api, start_front
from tests.support.service import Service

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


@pytest.fixture(scope="module")
def fronted(service: Service, tmp_path_factory) -> Iterator[tuple[Front, Front]]:
    root = tmp_path_factory.mktemp("accel")
    api = start_api(service, root / "api.log", {"ARRAYQ_ACCEL_REDIRECT_PREFIX": ACCEL_PREFIX})
    storage = Path(service.storage_url.removeprefix("file://"))
    front = start_front(root / "nginx", api.url, storage)
    assert front is not None
    try:
        yield api, front
    finally:
        front.stop()
        api.stop()


@pytest.fixture(scope="module")
def big_job(service: Service) -> tuple[str, np.ndarray]:
    x = np.arange(300_000, dtype=np.float64).reshape(600, 500)
    with service.client() as http:
        job = submit(http, "scale", {"factor": 2}, x=x)
        wait_for(http, job["id"])
    return job["id"], x * 2


def test_the_api_answers_with_the_internal_location_and_no_body(fronted, big_job):
    api, _ = fronted
    job_id, _ = big_job
    response = httpx.get(f"{api.url}/jobs/{job_id}/result", params={"format": "npy"})
    assert response.status_code == 200
    assert response.content == b""
    target = response.headers["x-accel-redirect"]
    # The object of the run that succeeded: results/<tenant>/<job>/<run>/result.npy
    assert target.startswith(ACCEL_PREFIX) and f"/{job_id}/" in target
    assert target.endswith("/result.npy")
    assert response.headers["content-type"] == "application/x-npy"


def test_nginx_sends_the_file_whole_and_by_range(fronted, big_job):
    _, front = fronted
    job_id, expected = big_job
    url = f"{front.url}/jobs/{job_id}/result?format=npy"
    whole = httpx.get(url)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/x-npy"
    assert f"{job_id}.npy" in whole.headers["content-disposition"]
    assert np.array_equal(np.load(io.BytesIO(whole.content), allow_pickle=False), expected)
    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == whole.content[10:100]


def test_signed_links_go_through_nginx_too(fronted, big_job):
    _, front = fronted
    job_id, expected = big_job
    link = httpx.get(f"{front.url}/jobs/{job_id}/result/url").json()["url"]
    response = httpx.get(link)
    assert response.status_code == 200
    assert np.array_equal(np.load(io.BytesIO(response.content), allow_pickle=False), expected)


def test_the_internal_location_is_not_reachable_from_outside(fronted, big_job):
    api, front = fronted
    job_id, _ = big_job
    target = httpx.get(f"{api.url}/jobs/{job_id}/result?format=npy").headers["x-accel-redirect"]
    assert httpx.get(front.url + target).status_code == 404


def test_unknown_jobs_and_bad_ranges_stay_json_errors_behind_nginx(fronted, big_job):
    _, front = fronted
    job_id, _ = big_job
    missing = httpx.get(f"{front.url}/jobs/{'0' * 32}/result?format=npy")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    bad = httpx.get(f"{front.url}/jobs/{job_id}/result?format=npy", headers={"Range": "bytes=zz"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_range"
