"""POST /uploads: raw .npy bodies streamed to the store, checked before anything is kept."""

import io

import httpx
import numpy as np
import pytest

from tests.support.jobs import result_array, wait_for
from tests.support.storage_peek import stored_keys

NPY = {"Content-Type": "application/x-npy"}


@pytest.fixture
def http(any_service) -> httpx.Client:
    with any_service.client(follow_redirects=True) as client:
        yield client


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def upload_keys(service) -> list[str]:
    return [key for key in stored_keys(service.storage_url, "uploads/") if "/.tmp-" not in key]


def test_upload_then_reference_it_from_a_job(http):
    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    response = http.post("/uploads", content=npy_bytes(x), headers=NPY)
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["dtype"] == "int16" and upload["shape"] == [3, 4] and upload["nbytes"] == 24
    body = {"op": "scale", "params": {"factor": 2}, "inputs": {"x": {"upload": upload["id"]}}}
    job = wait_for(http, http.post("/jobs", json=body).json()["id"])
    assert job["status"] == "succeeded", job
    np.testing.assert_array_equal(result_array(http, job["id"]), x * 2.0)


def test_fortran_order_and_big_endian_uploads(http):
    x = np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3))
    upload = http.post("/uploads", content=npy_bytes(x), headers=NPY).json()
    body = {"op": "identity", "inputs": {"x": {"upload": upload["id"]}}}
    job = wait_for(http, http.post("/jobs", json=body).json()["id"])
    np.testing.assert_array_equal(result_array(http, job["id"]), x)


def test_streamed_200_mb_upload(http, any_service):
    x = np.random.default_rng(3).standard_normal(25_000_000)  # 200 MB
    data = npy_bytes(x)

    def body():
        view = memoryview(data)
        for start in range(0, len(view), 1 << 20):
            yield view[start : start + (1 << 20)]

    response = http.post("/uploads", content=body(), headers=NPY, timeout=120)
    assert response.status_code == 201, response.text
    assert response.json()["nbytes"] == x.nbytes
    body_ref = {"op": "stats", "inputs": {"x": {"upload": response.json()["id"]}}}
    job = wait_for(http, http.post("/jobs", json=body_ref).json()["id"], timeout=120)
    stats = result_array(http, job["id"])
    np.testing.assert_allclose(stats, [x.mean(), x.std(), x.min(), x.max()])


def truncated() -> bytes:
    return npy_bytes(np.ones(1000))[:-100]


def wrong_header() -> bytes:
    return b"\x93NUMPX" + npy_bytes(np.ones(10))[6:]


def pickled() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def oversize_shape() -> bytes:
    header = npy_bytes(np.ones(1))
    return header.replace(b"(1,)", b"(10000000000,)", 1)


def too_long() -> bytes:
    return npy_bytes(np.ones(10)) + b"extra bytes past the declared size"


@pytest.mark.parametrize(
    ("make_body", "status", "error_type"),
    [
        (truncated, 422, "invalid_array"),
        (wrong_header, 422, "invalid_array"),
        (pickled, 422, "unsupported_dtype"),
        (oversize_shape, 413, "too_large"),
        (too_long, 422, "invalid_array"),
        (lambda: b"", 422, "invalid_array"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_kept(
    http, any_service, make_body, status, error_type
):
    before = upload_keys(any_service)
    body = make_body()

    def chunked():  # no Content-Length: the API must find the problem in the stream
        yield body

    response = http.post("/uploads", content=chunked(), headers=NPY)
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == error_type
    assert upload_keys(any_service) == before


def test_declared_length_must_match_the_header(http):
    response = http.post("/uploads", content=truncated(), headers=NPY)
    assert response.status_code == 422
    assert "Content-Length" in response.json()["error"]["message"]


def test_upload_needs_the_npy_media_type(http):
    response = http.post(
        "/uploads", content=npy_bytes(np.ones(3)), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_unknown_upload_reference_is_404(http):
    body = {"op": "svd", "inputs": {"x": {"upload": "0" * 32}}}
    response = http.post("/jobs", json=body)
    assert response.status_code == 404
