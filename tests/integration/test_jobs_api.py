"""End to end over HTTP: real API, real workers, real Redis, local-folder storage."""

import io
import time

import httpx
import numpy as np
import orjson
import pytest
import redis
from PIL import Image

from arrayq.api import signing
from arrayq.storage import keys
from arrayq.storage.jobs import JobStore
from tests.support.jobs import array_json, result_array, run, submit, wait_for


@pytest.fixture
def http(any_service) -> httpx.Client:
    with any_service.client(follow_redirects=True) as client:
        yield client


def on_s3(service) -> bool:
    return service.storage_url.startswith("s3://")


rng = np.random.default_rng(7)


# ops, numerically checked


def test_matmul(http):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    job = run(http, "matmul", a=a, b=b)
    np.testing.assert_allclose(result_array(http, job["id"]), a @ b)
    assert job["result"] == {
        "dtype": "float64", "shape": [5, 4], "nbytes": 160, "kind": "array",
        "formats": ["json", "npy", "png"],
    }  # fmt: skip


def test_random_is_reproducible_by_seed(http):
    params = {"shape": [3, 4], "seed": 42, "distribution": "uniform", "dtype": "float32"}
    first = result_array(http, run(http, "random", params)["id"])
    second = result_array(http, run(http, "random", params)["id"])
    assert first.dtype == np.float32 and first.shape == (3, 4)
    assert np.array_equal(first, second)
    assert ((first >= 0) & (first < 1)).all()


def test_fft_with_axes(http):
    x = rng.standard_normal((4, 6))
    job = run(http, "fft", {"axes": [1]}, x=x)
    assert np.allclose(result_array(http, job["id"]), np.fft.fftn(x, axes=[1]))


def test_solve(http):
    a, b = rng.standard_normal((4, 4)) + 4 * np.eye(4), rng.standard_normal(4)
    solution = result_array(http, run(http, "solve", a=a, b=b)["id"])
    np.testing.assert_allclose(a @ solution, b)


def test_solve_singular_fails_with_the_error(http):
    job = wait_for(http, submit(http, "solve", a=np.zeros((2, 2)), b=np.ones(2))["id"])
    assert job["status"] == "failed"
    assert job["error"]["type"] == "LinAlgError"
    assert "ingular" in job["error"]["message"]


def test_svd(http):
    x = rng.standard_normal((6, 4))
    values = result_array(http, run(http, "svd", x=x)["id"])
    np.testing.assert_allclose(values, np.linalg.svd(x, compute_uv=False))


def test_stats_along_axis(http):
    x = rng.standard_normal((5, 3))
    stats = result_array(http, run(http, "stats", {"axis": 0}, x=x)["id"])
    expected = np.stack([x.mean(0), x.std(0), x.min(0), x.max(0)])
    np.testing.assert_allclose(stats, expected)


def test_gaussian_blur_keeps_shape_and_constant_images(http):
    x = np.full((8, 9), 3.5)
    blurred = result_array(http, run(http, "gaussian_blur", {"sigma": 2.0}, x=x)["id"])
    assert blurred.shape == (8, 9)
    np.testing.assert_allclose(blurred, x)


def test_mandelbrot_is_an_image(http):
    params = {"width": 64, "height": 48, "max_iter": 30}
    job = run(http, "mandelbrot", params)
    assert job["result"]["kind"] == "image"
    assert job["result"]["shape"] == [48, 64, 3]
    png = http.get(f"/jobs/{job['id']}/result", headers={"Accept": "image/png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (64, 48) and image.mode == "RGB"
    assert int(png.headers["content-length"]) == len(png.content)


def test_render(http):
    x = np.linspace(0, 1, 30).reshape(5, 6)
    job = run(http, "render", {"cmap": "gray"}, x=x)
    image = result_array(http, job["id"])
    assert image.dtype == np.uint8 and image.shape == (5, 6, 3)
    assert image[0, 0].tolist() == [0, 0, 0] and image[-1, -1].tolist() == [255, 255, 255]


def test_sleep_reports_progress(http):
    job = run(http, "sleep", {"seconds": 0.3})
    assert job["progress"] == 1.0
    assert result_array(http, job["id"]).shape == ()


def test_user_op_from_ops_modules(http):
    ops = {op["name"] for op in http.get("/ops").json()}
    assert {"scale", "fail", "matmul", "sleep"} <= ops
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    scaled = result_array(http, run(http, "scale", {"factor": 3}, x=x)["id"])
    np.testing.assert_array_equal(scaled, x * 3.0)


def test_op_that_raises_marks_the_job_failed_and_the_worker_survives(http):
    job = wait_for(http, submit(http, "fail", {"message": "it broke"})["id"])
    assert job["status"] == "failed"
    error = job["error"]
    assert (error["type"], error["message"]) == ("RuntimeError", "it broke")
    # The op's own frames only: where it raised, none of the worker's.
    assert 'user_ops.py", line' in error["traceback"] and "in fail" in error["traceback"]
    assert "runner.py" not in error["traceback"] and "celery" not in error["traceback"]
    assert error["traceback"].rstrip().endswith("RuntimeError: it broke")
    assert run(http, "svd", x=np.eye(3))["status"] == "succeeded"


def test_ops_describe_params_inputs_and_result_kind(http):
    mandelbrot = http.get("/ops/mandelbrot").json()
    assert mandelbrot["result"] == "image" and mandelbrot["inputs"] == []
    assert mandelbrot["params"]["properties"]["max_iter"]["default"] == 100
    assert http.get("/ops/matmul").json()["inputs"] == ["a", "b"]
    missing = http.get("/ops/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "unknown_op"


# submission


def test_post_returns_202_location_and_document(http):
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(2))}, "cache": False}
    response = http.post("/jobs", json=body)
    assert response.status_code == 202
    document = response.json()
    assert response.headers["location"] == f"/jobs/{document['id']}"
    assert document["status"] in {"queued", "running", "succeeded"}
    assert document["links"]["self"] == f"/jobs/{document['id']}"
    assert set(document) >= {
        "id", "op", "status", "progress", "created_at", "started_at", "finished_at",
        "attempts", "error", "result", "links",
    }  # fmt: skip


def test_base64_inputs_round_trip_exactly(http):
    x = np.array([[1.5, np.nan], [-np.inf, -0.0]], dtype=np.float32)
    body = {"op": "scale", "params": {"factor": 1}, "inputs": {"x": array_json(x, base64=True)}}
    job = wait_for(http, http.post("/jobs", json=body).json()["id"])
    back = result_array(http, job["id"])
    assert back.dtype == np.float32  # a Python float scalar keeps float32 (NEP 50)
    assert back.tobytes() == x.tobytes()


def test_idempotency_key_returns_the_first_job(http):
    body = {"op": "svd", "inputs": {"x": array_json(np.eye(3))}, "cache": False}
    headers = {"Idempotency-Key": f"k-{time.time_ns()}"}
    first = http.post("/jobs", json=body, headers=headers)
    again = http.post("/jobs", json=body, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = http.post("/jobs", json={**body, "params": {}, "op": "stats"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_mismatch"


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 422, "validation_error"),
        (orjson.dumps({"op": "nope"}), 422, "unknown_op"),
        (orjson.dumps({"op": "random", "params": {"shape": [-1]}}), 422, "invalid_params"),
        (
            orjson.dumps({"op": "random", "params": {"shape": [2], "bogus": 1}}),
            422,
            "invalid_params",
        ),
        (orjson.dumps({"op": "random", "params": {"shape": [100000, 100000]}}), 413, "too_large"),
        (orjson.dumps({"op": "svd", "inputs": {}}), 422, "invalid_inputs"),
        (
            orjson.dumps(
                {"op": "svd", "inputs": {"x": {"dtype": "object", "shape": [1], "data": [1]}}}
            ),
            422,
            "unsupported_dtype",
        ),
        (
            orjson.dumps(
                {"op": "svd", "inputs": {"x": {"dtype": "float64", "shape": [3], "data": [1, 2]}}}
            ),
            422,
            "invalid_array",
        ),
        (
            orjson.dumps(
                {"op": "svd", "inputs": {"x": {"dtype": "float64", "shape": [1], "base64": "***"}}}
            ),
            422,
            "invalid_array",
        ),
        (orjson.dumps({"op": "svd", "extra": 1}), 422, "validation_error"),
    ],
)
def test_bad_submissions_get_their_4xx(http, body, status, error_type):
    before = http.get("/jobs", params={"limit": 1000}).json()["items"]
    response = http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == error_type
    assert response.json()["error"]["message"]
    after = http.get("/jobs", params={"limit": 1000}).json()["items"]
    assert [job["id"] for job in after] == [job["id"] for job in before]


def test_unsupported_dtype_is_named(http):
    x = {"dtype": "datetime64[s]", "shape": [1], "data": [1]}
    response = http.post("/jobs", json={"op": "svd", "inputs": {"x": x}})
    assert response.status_code == 422 and "datetime64" in response.json()["error"]["message"]


def test_wrong_content_type_is_415(http):
    response = http.post("/jobs", content=b"op=svd", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_unknown_routes_and_methods_are_json_errors(http):
    missing = http.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    wrong = http.put("/jobs")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "method_not_allowed"
    assert http.get("/jobs/not-an-id").status_code == 404
    assert http.get(f"/jobs/{'0' * 32}").status_code == 404


# result negotiation


@pytest.fixture(scope="module")
def small_job(any_service) -> dict:
    with any_service.client() as client:
        return run(client, "random", {"shape": [20, 30], "seed": 1})


@pytest.fixture(scope="module")
def large_job(any_service) -> dict:
    with any_service.client() as client:  # 1.28 MB, over the 1 MiB inline limit
        return run(client, "random", {"shape": [400, 400], "seed": 2})


def expected_random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def test_small_result_is_inline_json_by_default(http, small_job):
    response = http.get(f"/jobs/{small_job['id']}/result")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert "chunked" not in response.headers.get("transfer-encoding", "")
    document = response.json()
    assert document["dtype"] == "float64" and document["shape"] == [20, 30]
    assert np.array_equal(np.array(document["data"]), expected_random((20, 30), 1))


def test_large_result_json_is_406_with_links(http, large_job):
    response = http.get(f"/jobs/{large_job['id']}/result", headers={"Accept": "application/json"})
    assert response.status_code == 406
    body = response.json()
    assert body["error"]["type"] == "not_acceptable"
    assert body["links"]["npy"] == f"/jobs/{large_job['id']}/result?format=npy"
    assert "json" not in large_job["result"]["formats"]


def test_large_result_default_is_303_to_npy(http, large_job):
    response = http.get(f"/jobs/{large_job['id']}/result", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/jobs/{large_job['id']}/result?format=npy"


@pytest.mark.parametrize("accept", ["application/x-npy", "application/octet-stream"])
def test_npy_download(http, large_job, accept):
    response = http.get(f"/jobs/{large_job['id']}/result", headers={"Accept": accept})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers.get("etag")
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert np.array_equal(array, expected_random((400, 400), 2))


@pytest.mark.parametrize("redirect", ["true", "false"])
def test_npy_range_request(http, large_job, redirect):
    url = f"/jobs/{large_job['id']}/result?format=npy&redirect={redirect}"
    whole = http.get(url).content
    part = http.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.content == whole[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(whole)}"
    assert part.headers["content-length"] == "1024"


def test_npy_on_s3_redirects_to_a_presigned_url_for_the_public_endpoint(
    http, any_service, large_job
):
    if not on_s3(any_service):
        pytest.skip("local storage serves the file itself")
    response = http.get(f"/jobs/{large_job['id']}/result?format=npy", follow_redirects=False)
    assert response.status_code == 307
    location = httpx.URL(response.headers["location"])
    assert location.host == "localhost" and "X-Amz-Signature" in str(location)


def test_npy_streamed_through_has_content_length(http, large_job):
    response = http.get(f"/jobs/{large_job['id']}/result?format=npy&redirect=false")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert "chunked" not in response.headers.get("transfer-encoding", "")
    assert np.array_equal(np.load(io.BytesIO(response.content)), expected_random((400, 400), 2))


def test_head_gives_headers_only(http, large_job):
    response = http.head(f"/jobs/{large_job['id']}/result?format=npy&redirect=false")
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) > 400 * 400 * 8
    assert response.headers["etag"]


def test_png_of_2d_numeric_result(http, small_job):
    response = http.get(f"/jobs/{small_job['id']}/result?format=png&cmap=magma&vmin=-1&vmax=1")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (30, 20)


def test_png_of_1d_result_is_406(http):
    job = run(http, "svd", x=np.eye(3))
    response = http.get(f"/jobs/{job['id']}/result", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert "npy" in response.json()["links"]


def test_query_format_wins_over_accept(http, small_job):
    response = http.get(
        f"/jobs/{small_job['id']}/result?format=npy", headers={"Accept": "application/json"}
    )
    assert response.headers["content-type"] == "application/x-npy"


def test_unacceptable_accept_is_406(http, small_job):
    response = http.get(f"/jobs/{small_job['id']}/result", headers={"Accept": "text/html"})
    assert response.status_code == 406


def test_result_before_success_is_409_with_the_job(http):
    job = submit(http, "sleep", {"seconds": 1.0})
    response = http.get(f"/jobs/{job['id']}/result")
    assert response.status_code == 409
    assert response.json()["job"]["id"] == job["id"]
    wait_for(http, job["id"])


def test_result_of_failed_job_is_409(http):
    job = wait_for(http, submit(http, "fail")["id"])
    response = http.get(f"/jobs/{job['id']}/result")
    assert response.status_code == 409
    assert response.json()["job"]["status"] == "failed"


def test_openapi_declares_png(http):
    spec = http.get("/openapi.json").json()
    content = spec["paths"]["/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert "image/png" in content and "application/x-npy" in content


# signed links


def test_signed_url_downloads_the_npy(http, large_job):
    link = http.get(f"/jobs/{large_job['id']}/result/url").json()
    assert link["expires_at"].endswith("Z")
    response = httpx.get(link["url"])  # no credentials: the signature is enough
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert np.array_equal(np.load(io.BytesIO(response.content)), expected_random((400, 400), 2))


def test_tampered_signed_url_is_403(http, any_service, large_job):
    url = http.get(f"/jobs/{large_job['id']}/result/url").json()["url"]
    signature = "X-Amz-Signature=" if on_s3(any_service) else "sig="
    start = url.index(signature) + len(signature)
    flipped = url[:start] + ("0" if url[start] != "0" else "1") + url[start + 1 :]
    response = httpx.get(flipped)
    assert response.status_code == 403
    if not on_s3(any_service):
        assert response.json()["error"]["type"] == "forbidden"


def test_expired_signed_url_is_403(http, any_service, large_job):
    if on_s3(any_service):
        pytest.skip("the S3 server checks its own expiry: tests/integration/test_stores.py")
    service = any_service
    secret = redis.Redis.from_url(service.redis_url).get(keys.signing_secret_key())
    expired = int(time.time()) - 1
    signature = signing.sign(secret, large_job["id"], expired)
    response = httpx.get(f"{service.url}/files/{large_job['id']}?exp={expired}&sig={signature}")
    assert response.status_code == 403


# listing


def test_listing_newest_first_with_filters_and_pagination(http):
    ids = [submit(http, "scale", {"factor": i}, x=np.ones(2))["id"] for i in range(5)]
    for job_id in ids:
        wait_for(http, job_id)
    page = http.get("/jobs", params={"op": "scale", "limit": 2}).json()
    assert [job["id"] for job in page["items"]] == ids[::-1][:2]
    second = http.get("/jobs", params={"op": "scale", "limit": 2, "cursor": page["next_cursor"]})
    assert [job["id"] for job in second.json()["items"]] == ids[::-1][2:4]
    succeeded = http.get("/jobs", params={"status": "succeeded", "op": "scale", "limit": 1000})
    assert set(ids) <= {job["id"] for job in succeeded.json()["items"]}
    failed = http.get("/jobs", params={"status": "failed", "limit": 1000}).json()["items"]
    assert all(job["status"] == "failed" for job in failed)


def test_status_filter_follows_every_transition(http):
    """The status filter reads a per-status index kept by the transition scripts:
    each job shows under the status it has now, and under no other."""

    def listed(status: str) -> set[str]:
        items = http.get("/jobs", params={"status": status, "limit": 1000}).json()["items"]
        assert all(job["status"] == status for job in items)
        return {job["id"] for job in items}

    singular = {"a": np.zeros((2, 2)), "b": np.ones(2)}
    failed = submit(http, "solve", **singular)["id"]
    done = submit(http, "scale", {"factor": 2}, x=np.ones(2))["id"]
    wait_for(http, failed)
    wait_for(http, done)
    sleeper = submit(http, "sleep", {"seconds": 30})["id"]
    wait_for(http, sleeper, {"running"})
    assert failed in listed("failed") and failed not in listed("succeeded")
    assert done in listed("succeeded") and done not in listed("failed")
    assert sleeper in listed("running") and sleeper not in listed("queued")
    assert http.delete(f"/jobs/{sleeper}").status_code == 204
    wait_for(http, sleeper)
    assert sleeper in listed("cancelled") and sleeper not in listed("running")
    assert http.delete(f"/jobs/{failed}").status_code == 204
    assert failed not in listed("failed")


def test_cursors_are_opaque_and_checked(http):
    for _ in range(2):
        submit(http, "scale", {"factor": 1}, x=np.ones(1))
    cursor = http.get("/jobs", params={"limit": 1}).json()["next_cursor"]
    assert cursor and not cursor.isdigit()
    tampered = cursor[:-1] + ("B" if cursor[-1] != "B" else "C")
    for bad in ("7", tampered + "x", cursor + "=", "!!!!"):
        response = http.get("/jobs", params={"cursor": bad})
        assert response.status_code == 422, bad
        assert response.json()["error"]["type"] == "invalid_cursor"


def test_listing_rejects_bad_parameters(http):
    assert http.get("/jobs", params={"limit": 0}).status_code == 422
    assert http.get("/jobs", params={"limit": 1001}).status_code == 422
    assert http.get("/jobs", params={"status": "bogus"}).status_code == 422
    assert http.get("/jobs", params={"cursor": "abc"}).status_code == 422


# cancel and delete


def test_cancel_running_sleep_stops_within_two_seconds(http):
    job = submit(http, "sleep", {"seconds": 30})
    wait_for(http, job["id"], {"running"})
    started = time.monotonic()
    assert http.delete(f"/jobs/{job['id']}").status_code == 204
    assert wait_for(http, job["id"])["status"] == "cancelled"
    # the worker is free again within 2 s: a new job starts on it
    follow_up = run(http, "svd", x=np.eye(2))
    assert follow_up["status"] == "succeeded"
    assert time.monotonic() - started < 10


def test_cancel_queued_job_never_runs(http):
    blockers = [submit(http, "sleep", {"seconds": 30}) for _ in range(2)]
    for blocker in blockers:
        wait_for(http, blocker["id"], {"running"})
    queued = submit(http, "svd", cache=False, x=np.eye(2))
    assert http.get(f"/jobs/{queued['id']}").json()["status"] == "queued"
    assert http.delete(f"/jobs/{queued['id']}").status_code == 204
    for blocker in blockers:
        http.delete(f"/jobs/{blocker['id']}")
    time.sleep(1.5)  # give the workers time to pick up the cancelled job's message
    document = http.get(f"/jobs/{queued['id']}").json()
    assert document["status"] == "cancelled"
    assert document["attempts"] == 0 and document["started_at"] is None


def test_delete_finished_job_removes_it(http):
    job = run(http, "svd", x=np.eye(2))
    assert http.delete(f"/jobs/{job['id']}").status_code == 204
    assert http.get(f"/jobs/{job['id']}").status_code == 404
    assert http.get(f"/jobs/{job['id']}/result").status_code == 404


# events


def test_events_stream_until_final_status(http):
    job = submit(http, "sleep", {"seconds": 1.0})
    events = []
    with http.stream("GET", f"/jobs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, orjson.loads(line.removeprefix("data: "))))
    assert events[-1][1]["status"] == "succeeded"
    assert any(kind == "progress" for kind, _ in events)
    progress = [doc["progress"] for kind, doc in events]
    assert progress == sorted(progress)


# health


def test_health_and_readiness(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_the_cleanup_prunes_expired_jobs_from_the_listing_indexes(http, any_service):
    """Records expire on their own; the workers' cleanup removes their ids from the
    tenant's indexes, so no listing walks through them."""
    ids = [submit(http, "scale", {"factor": 1}, x=np.ones(1))["id"] for _ in range(3)]
    for job_id in ids:
        wait_for(http, job_id)
    client = redis.Redis.from_url(any_service.redis_url, decode_responses=True)
    index = keys.tenant_jobs_key("default")
    done = keys.tenant_status_key("default", "succeeded")
    client.delete(*(keys.job_key(job_id) for job_id in ids[:2]))  # as if they expired
    removed = JobStore(client, ttl_seconds=60).prune_indexes()
    assert removed >= 4
    for key in (index, done):
        assert client.zscore(key, ids[0]) is None and client.zscore(key, ids[1]) is None
        assert client.zscore(key, ids[2]) is not None
    client.close()
