"""GET /jobs/{id}/result.zarr/...: zarr-python and dask read results lazily over
real HTTP, on both stores; auth and tenancy as for the result routes."""

import io
from collections.abc import Iterator

import aiohttp
import dask.array as da
import httpx
import numpy as np
import orjson
import pytest
import zarr

from arrayq.client.processes import Managed, arrayq_command, free_port, http_answers, wait_until
from arrayq.storage import codecs
from tests.support.jobs import run, submit, wait_for

SHAPE = (1500, 1000)  # float64 rows of 8000 bytes: 1048 rows a chunk, the second padded
CHUNK_ROWS = 1048
SUPPORTED = sorted(codecs.SUPPORTED_DTYPES)


@pytest.fixture(scope="module")
def http(any_service) -> Iterator[httpx.Client]:
    with any_service.client() as client:
        yield client


@pytest.fixture(scope="module")
def stored(http) -> tuple[str, np.ndarray]:
    job = run(http, "random", {"shape": list(SHAPE), "seed": 5})
    return job["id"], np.random.default_rng(5).standard_normal(SHAPE)


def view_url(http: httpx.Client, job_id: str) -> str:
    return f"{http.base_url}/jobs/{job_id}/result.zarr"


def test_metadata_describes_the_stored_npy(http, stored):
    job_id, _ = stored
    response = http.get(f"/jobs/{job_id}/result.zarr/zarr.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(SHAPE),
        "data_type": "float64",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [CHUNK_ROWS, 1000]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "fill_value": 0.0,
        "attributes": {},
    }
    head = http.head(f"/jobs/{job_id}/result.zarr/zarr.json")
    assert head.status_code == 200 and head.content == b""


def test_strided_slices_through_zarr_equal_the_npy(http, stored):
    job_id, _ = stored
    download = http.get(f"/jobs/{job_id}/result", params={"format": "npy", "redirect": "false"})
    whole = np.load(io.BytesIO(download.content), allow_pickle=False)
    array = zarr.open_array(view_url(http, job_id), mode="r")
    assert array.shape == SHAPE and array.dtype == np.float64
    for index in [np.s_[10:1400:7, ::3], np.s_[1000:1100, 999], np.s_[1499], np.s_[::500, 5:9]]:
        np.testing.assert_array_equal(array[index], whole[index])


def test_dask_reads_every_chunk(http, stored):
    job_id, expected = stored
    lazy = da.from_zarr(view_url(http, job_id))
    assert lazy.chunks == ((CHUNK_ROWS, SHAPE[0] - CHUNK_ROWS), (SHAPE[1],))
    assert float(lazy.sum().compute()) == pytest.approx(float(expected.sum()), rel=1e-12)


def test_last_chunk_is_padded_to_full_size(http, stored):
    job_id, expected = stored
    url = f"/jobs/{job_id}/result.zarr/c/1/0"
    response = http.get(url)
    assert response.status_code == 200
    full = CHUNK_ROWS * SHAPE[1] * 8
    assert int(response.headers["content-length"]) == len(response.content) == full
    assert "transfer-encoding" not in response.headers
    chunk = np.frombuffer(response.content, dtype="<f8").reshape(CHUNK_ROWS, SHAPE[1])
    stored_rows = SHAPE[0] - CHUNK_ROWS
    np.testing.assert_array_equal(chunk[:stored_rows], expected[CHUNK_ROWS:])
    assert not chunk[stored_rows:].any()
    head = http.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == full


@pytest.mark.parametrize(
    "key", ["c/2/0", "c/0/1", "c/0", "c/0/0/0", "c/-1/0", ".zarray", ".zattrs", ".zgroup", "x", ""]
)
def test_keys_outside_the_view_are_404(http, stored, key):
    response = http.get(f"/jobs/{stored[0]}/result.zarr/{key}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] in {"no_such_chunk", "not_found"}


def test_unknown_job_is_404(http):
    response = http.get(f"/jobs/{'0' * 32}/result.zarr/zarr.json")
    assert response.status_code == 404


def test_every_supported_dtype_reads_back(http):
    rng = np.random.default_rng(1)
    for name in SUPPORTED:
        values = rng.standard_normal((6, 4)) * 40
        array = (values > 0) if name == "bool" else values.astype(name)
        if array.dtype.kind == "c":
            array = array + 1j * array[::-1]
        job = run(http, "identity", x=array)
        opened = zarr.open_array(view_url(http, job["id"]), mode="r")
        assert opened.dtype == array.dtype, name
        np.testing.assert_array_equal(opened[...], array)
        np.testing.assert_array_equal(opened[1::2, ::3], array[1::2, ::3])


def test_0d_and_empty_results(http):
    scalar = run(http, "identity", x=np.array(2.5))
    opened = zarr.open_array(view_url(http, scalar["id"]), mode="r")
    assert opened.shape == () and opened[()] == 2.5
    empty = run(http, "identity", x=np.zeros((0, 3), dtype=np.int32))
    opened = zarr.open_array(view_url(http, empty["id"]), mode="r")
    assert opened.shape == (0, 3) and opened[...].shape == (0, 3)
    assert http.get(f"/jobs/{empty['id']}/result.zarr/c/0/0").status_code == 404


def test_image_result_has_a_view(http):
    job = run(http, "mandelbrot", {"width": 64, "height": 48, "max_iter": 20})
    opened = zarr.open_array(view_url(http, job["id"]), mode="r")
    assert opened.shape == (48, 64, 3) and opened.dtype == np.uint8
    npy = http.get(f"/jobs/{job['id']}/result", params={"format": "npy", "redirect": "false"})
    np.testing.assert_array_equal(opened[...], np.load(io.BytesIO(npy.content)))


def test_job_not_succeeded_is_409_with_the_job(http):
    job = submit(http, "sleep", {"seconds": 20})
    try:
        response = http.get(f"/jobs/{job['id']}/result.zarr/zarr.json")
        assert response.status_code == 409
        body = response.json()
        assert body["error"]["type"] == "result_not_ready" and body["job"]["id"] == job["id"]
    finally:
        http.delete(f"/jobs/{job['id']}")
    failed = wait_for(http, submit(http, "fail")["id"])
    assert http.get(f"/jobs/{failed['id']}/result.zarr/c/0").status_code == 409


@pytest.fixture(scope="module")
def keyed_replica(service, tmp_path_factory) -> Iterator[str]:
    """A second API on the same Redis and store whose keys map to the open
    service's tenant (`default`) and to another one."""
    port = free_port()
    replica = Managed(
        "api-keyed",
        arrayq_command("api", "--port", str(port)),
        env={**service.env, "ARRAYQ_API_KEYS": "zarr-key:default,other-key:other"},
        log_path=tmp_path_factory.mktemp("zarr-keyed") / "api.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_answers(f"{url}/healthz"), 30, "the keyed API")
        yield url
    finally:
        replica.stop(timeout=15)


def test_keys_and_tenancy_as_for_results(service, keyed_replica):
    with service.client() as http:
        job = run(http, "random", {"shape": [20, 3], "seed": 2})
    url = f"{keyed_replica}/jobs/{job['id']}/result.zarr"
    for key in ("zarr.json", "c/0/0"):
        assert httpx.get(f"{url}/{key}").status_code == 401
        other = httpx.get(f"{url}/{key}", headers={"Authorization": "Bearer other-key"})
        assert other.status_code == 404
    headers = {"Authorization": "Bearer zarr-key"}
    array = zarr.open_array(url, mode="r", storage_options={"headers": headers})
    np.testing.assert_array_equal(array[...], np.random.default_rng(2).standard_normal((20, 3)))
    with pytest.raises(aiohttp.ClientResponseError) as refused:
        zarr.open_array(url, mode="r")
    assert refused.value.status == 401
    assert orjson.loads(httpx.get(f"{url}/zarr.json").content)["error"]["type"] == "unauthorized"


def test_each_output_of_a_multi_output_job_has_a_view(http):
    x = np.random.default_rng(4).standard_normal((40, 40))
    x = x + x.T
    job = run(http, "eigh", x=x)
    values, vectors = np.linalg.eigh(x)
    base = f"{http.base_url}/jobs/{job['id']}/outputs"
    for name, expected in (("eigenvalues", values), ("eigenvectors", vectors)):
        opened = zarr.open_array(f"{base}/{name}.zarr", mode="r")
        assert opened.shape == expected.shape and opened.dtype == np.float64
        np.testing.assert_allclose(opened[...], expected, rtol=1e-10, atol=1e-12)
        stored = http.get(
            f"/jobs/{job['id']}/outputs/{name}", params={"format": "npy", "redirect": "false"}
        )
        np.testing.assert_array_equal(opened[...], np.load(io.BytesIO(stored.content)))
    np.testing.assert_array_equal(
        da.from_zarr(f"{base}/eigenvectors.zarr")[::3, 1::2].compute(),
        zarr.open_array(f"{base}/eigenvectors.zarr", mode="r")[::3, 1::2],
    )
    whole = http.get(f"/jobs/{job['id']}/result.zarr/zarr.json")
    assert whole.status_code == 404 and whole.json()["error"]["type"] == "no_zarr_view"
    unknown = http.get(f"/jobs/{job['id']}/outputs/nope.zarr/zarr.json")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "unknown_output"
    assert http.get(f"/jobs/{job['id']}/outputs/eigenvalues.zarr/c/1").status_code == 404


def test_a_single_result_is_also_the_output_named_result(http, stored):
    job_id, _ = stored
    same = [
        http.get(f"/jobs/{job_id}/{path}/c/1/0").content
        for path in ("result.zarr", "outputs/result.zarr")
    ]
    assert same[0] == same[1] and len(same[0]) == CHUNK_ROWS * SHAPE[1] * 8
