"""Jobs with several outputs, end to end on both stores: JSON, .npy, .npz,
slices, links, and the errors of a wrong return."""

import io
import zipfile

import httpx
import numpy as np
import orjson
import pytest

from arrayq.storage import codecs
from tests.support.jobs import run, submit, wait_for


@pytest.fixture
def http(any_service) -> httpx.Client:
    with any_service.client(follow_redirects=True) as client:
        yield client


def on_s3(service) -> bool:
    return service.storage_url.startswith("s3://")


def decode(content: bytes) -> np.ndarray:
    return codecs.decode_array_json(orjson.loads(content), max_bytes=1 << 30)


def npy(content: bytes) -> np.ndarray:
    return np.load(io.BytesIO(content), allow_pickle=False)


def symmetric(n: int, seed: int = 3) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a + a.T


def test_eigh_document_lists_each_output(http):
    x = symmetric(4)
    job = run(http, "eigh", x=x)
    result = job["result"]
    assert result["kind"] == "outputs" and result["formats"] == ["json", "npz"]
    assert result["nbytes"] == 4 * 8 + 16 * 8
    assert result["outputs"] == {
        "eigenvalues": {
            "dtype": "float64", "shape": [4], "nbytes": 32, "kind": "array",
            "formats": ["json", "npy"],
        },
        "eigenvectors": {
            "dtype": "float64", "shape": [4, 4], "nbytes": 128, "kind": "array",
            "formats": ["json", "npy", "png"],
        },
    }  # fmt: skip
    assert job["links"]["outputs"] == {
        name: f"/jobs/{job['id']}/outputs/{name}" for name in ("eigenvalues", "eigenvectors")
    }


def test_eigh_outputs_by_json_npy_and_npz(http):
    x = symmetric(5)
    values, vectors = np.linalg.eigh(x)
    job_id = run(http, "eigh", x=x)["id"]
    both = orjson.loads(http.get(f"/jobs/{job_id}/result").content)["outputs"]
    np.testing.assert_array_equal(decode(orjson.dumps(both["eigenvalues"])), values)
    np.testing.assert_array_equal(decode(orjson.dumps(both["eigenvectors"])), vectors)
    one = http.get(f"/jobs/{job_id}/outputs/eigenvectors", headers={"Accept": "application/x-npy"})
    assert one.status_code == 200 and one.headers["content-type"] == "application/x-npy"
    np.testing.assert_array_equal(npy(one.content), vectors)
    archive = http.get(f"/jobs/{job_id}/result", headers={"Accept": "application/x-npz"})
    assert archive.status_code == 200
    assert int(archive.headers["content-length"]) == len(archive.content)
    assert "chunked" not in archive.headers.get("transfer-encoding", "")
    with np.load(io.BytesIO(archive.content), allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["eigenvalues", "eigenvectors"]
        np.testing.assert_array_equal(loaded["eigenvalues"], values)
        np.testing.assert_array_equal(loaded["eigenvectors"], vectors)
    # The very bytes np.savez writes, and every CRC checks out.
    expected = io.BytesIO()
    np.savez(expected, eigenvalues=values, eigenvectors=vectors)
    assert archive.content == expected.getvalue()
    assert zipfile.ZipFile(io.BytesIO(archive.content)).testzip() is None
    assert http.get(f"/jobs/{job_id}/result?format=npz").content == archive.content


def test_output_slices_ranges_head_and_png(http):
    x = symmetric(6)
    vectors = np.linalg.eigh(x)[1]
    job_id = run(http, "eigh", x=x)["id"]
    base = f"/jobs/{job_id}/outputs/eigenvectors"
    sliced = http.get(f"{base}?slice=1:3,::2")
    np.testing.assert_array_equal(decode(sliced.content), vectors[1:3, ::2])
    as_npy = http.get(f"{base}?slice=2&format=npy")
    np.testing.assert_array_equal(npy(as_npy.content), vectors[2])
    # HEAD through the API (a presigned URL is signed for GET only).
    head = http.head(f"{base}?redirect=false", headers={"Accept": "application/x-npy"})
    assert head.status_code == 200 and int(head.headers["content-length"]) == 128 + 36 * 8
    part = http.get(base, headers={"Accept": "application/x-npy", "Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == b"\x93NUMPY\x01\x00v\x00"
    png = http.get(f"{base}?format=png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert http.get(f"/jobs/{job_id}/outputs/eigenvalues?format=png").status_code == 406


def test_multi_output_result_refuses_npy_and_png_with_links(http):
    job_id = run(http, "eigh", x=symmetric(3))["id"]
    for fmt in ("png", "npy"):
        response = http.get(f"/jobs/{job_id}/result?format={fmt}")
        assert response.status_code == 406, response.text
        body = response.json()
        assert body["error"]["type"] == "not_acceptable"
        assert body["links"]["outputs"]["eigenvalues"] == f"/jobs/{job_id}/outputs/eigenvalues"
        assert body["links"]["npz"] == f"/jobs/{job_id}/result?format=npz"
    assert http.get(f"/jobs/{job_id}/result?slice=0").status_code == 422
    assert http.get(f"/jobs/{job_id}/result/url").status_code == 406


def test_unknown_output_is_404_and_result_names_a_single_output(http):
    job_id = run(http, "eigh", x=symmetric(3))["id"]
    missing = http.get(f"/jobs/{job_id}/outputs/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "unknown_output"
    assert http.get(f"/jobs/{job_id}/outputs/result").status_code == 404
    single = run(http, "scale", {"factor": 2}, x=np.arange(4.0))["id"]
    np.testing.assert_array_equal(
        decode(http.get(f"/jobs/{single}/outputs/result").content), np.arange(4.0) * 2
    )
    assert "outputs" not in http.get(f"/jobs/{single}").json()["links"]


def test_large_outputs_see_other_to_npz(any_service, http):
    x = np.random.default_rng(1).standard_normal(1000)
    job = run(http, "histogram", {"bins": 70_000}, x=x)
    assert job["result"]["formats"] == ["npz"]  # 1.1 MB: over the inline limit
    with any_service.client() as plain:
        answer = plain.get(f"/jobs/{job['id']}/result")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/jobs/{job['id']}/result?format=npz"
        refused = plain.get(f"/jobs/{job['id']}/result", headers={"Accept": "application/json"})
        assert refused.status_code == 406 and "npz" in refused.json()["links"]
    counts, edges = np.histogram(x, bins=70_000)
    with np.load(io.BytesIO(http.get(f"/jobs/{job['id']}/result").content)) as loaded:
        np.testing.assert_array_equal(loaded["counts"], counts)
        np.testing.assert_array_equal(loaded["edges"], edges)


def test_output_download_links(any_service, http):
    x = symmetric(4)
    job_id = run(http, "eigh", x=x)["id"]
    link = http.get(f"/jobs/{job_id}/outputs/eigenvalues/url").json()
    assert set(link) == {"url", "expires_at"}
    with httpx.Client(timeout=30) as anonymous:  # the link is the credential
        content = anonymous.get(link["url"]).content
    np.testing.assert_array_equal(npy(content), np.linalg.eigh(x)[0])
    if on_s3(any_service):
        assert "X-Amz-Signature" in link["url"]
        with any_service.client() as plain:
            redirect = plain.get(
                f"/jobs/{job_id}/outputs/eigenvalues", headers={"Accept": "application/x-npy"}
            )
        assert redirect.status_code == 307 and "X-Amz-Signature" in redirect.headers["location"]
    else:
        forged = link["url"].replace("eigenvalues", "eigenvectors")
        assert httpx.get(forged).status_code == 403


def test_user_ops_return_a_tuple_or_a_dict(http):
    x = np.arange(12, dtype=np.int32).reshape(4, 3)
    job_id = run(http, "minmax", x=x)["id"]
    np.testing.assert_array_equal(decode(http.get(f"/jobs/{job_id}/outputs/low").content), x[0])
    np.testing.assert_array_equal(decode(http.get(f"/jobs/{job_id}/outputs/high").content), x[3])
    y = np.arange(7, dtype=np.int64)
    job = run(http, "split", x=y)
    assert list(job["result"]["outputs"]) == ["evens", "odds", "total"]  # declared order
    both = orjson.loads(http.get(f"/jobs/{job['id']}/result").content)["outputs"]
    assert decode(orjson.dumps(both["total"])) == 21
    np.testing.assert_array_equal(decode(orjson.dumps(both["odds"])), y[1::2])


@pytest.mark.parametrize(
    ("how", "names"),
    [("count", "1 arrays for its 2 outputs"), ("missing", "missing ['second']"),
     ("object", "output 'second'")],
)  # fmt: skip
def test_wrong_outputs_fail_with_invalid_result_naming_it(http, how, names):
    job = wait_for(http, submit(http, "wrong_outputs", {"how": how})["id"])
    assert job["status"] == "failed" and job["error"]["type"] == "invalid_result"
    assert names in job["error"]["message"], job["error"]


def test_ops_show_outputs_version_and_cache(http):
    eigh = http.get("/ops/eigh").json()
    assert eigh["outputs"] == ["eigenvalues", "eigenvectors"] and eigh["inputs"] == ["x"]
    assert eigh["version"] == "1" and eigh["cache"] is True
    assert http.get("/ops/matmul").json()["outputs"] == ["result"]
    assert http.get("/ops/sleep").json()["cache"] is False
    histogram = http.get("/ops/histogram").json()
    assert histogram["outputs"] == ["counts", "edges"]
    assert histogram["params"]["properties"]["bins"]["default"] == 10
