"""The Python client against the real service: API, workers, Redis, storage."""

import base64
import io
import itertools
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from arrayq.client import (
    AsyncClient,
    AsyncJob,
    Client,
    Expired,
    Job,
    JobCancelled,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
    ValidationError,
)
from arrayq.client._http import job_body
from arrayq.client.processes import free_port
from arrayq.storage import codecs
from tests.support.seaweed import seaweed_s3
from tests.support.service import Service, start_service

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with Client(service.url) as running:
        yield running


@pytest.fixture
def uploads_client(service: Service) -> Iterator[Client]:
    """A client that uploads every input, whatever its size."""
    require_uploads(service)
    with Client(service.url, upload_over_bytes=0) as running:
        yield running


def require_uploads(service: Service) -> None:
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    if "/uploads" not in paths:
        pytest.xfail("POST /uploads is not on the server yet")


def seeded(seed: int, shape: tuple[int, ...], dtype: str = "float64") -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(size=shape, dtype=np.dtype(dtype))


# results, exactly


def test_ops_lists_the_builtins(client: Client) -> None:
    names = {op["name"] for op in client.ops()}
    assert {"matmul", "random", "solve", "sleep", "mandelbrot"} <= names


def test_matmul_of_integers_is_exact_and_keeps_the_dtype(client: Client) -> None:
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.arange(8, dtype=np.int32).reshape(4, 2) - 3
    result = client.submit("matmul", a=a, b=b).result(timeout=60)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, a @ b)


def test_matmul_of_floats(client: Client) -> None:
    a, b = seeded(1, (5, 3)), seeded(2, (3, 4))
    job = client.submit("matmul", a=a, b=b).wait(timeout=60)
    assert isinstance(job, Job)
    assert job.document["status"] == "succeeded"
    np.testing.assert_allclose(job.result(), a @ b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_small_result_comes_bit_exact_through_json(client: Client, dtype: str) -> None:
    job = client.submit("random", {"shape": [4, 5], "seed": 3, "dtype": dtype}).wait(timeout=60)
    assert "json" in job.document["result"]["formats"]
    result = job.result()
    assert result.dtype == np.dtype(dtype)
    assert result.tobytes() == seeded(3, (4, 5), dtype).tobytes()


def test_random_large_result_comes_bit_exact_through_npy(client: Client) -> None:
    job = client.submit("random", {"shape": [700, 500], "seed": 4}).wait(timeout=60)
    assert "json" not in job.document["result"]["formats"]
    assert job.result().tobytes() == seeded(4, (700, 500)).tobytes()


def test_nan_and_infinities_travel_inline_exactly(client: Client) -> None:
    x = np.array([[np.nan, np.inf], [-np.inf, -0.0]], dtype=np.float32)
    result = client.submit("scale", {"factor": 1.0}, x=x).result(timeout=60)
    assert result.dtype == np.float32
    assert result.tobytes() == x.tobytes()


def test_result_waits_for_the_job(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 0.3})
    assert float(job.result(timeout=60)) == 0.3
    assert job.document["status"] == "succeeded"


def test_wait_with_a_progress_bar(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    job = client.submit("sleep", {"seconds": 0.5}).wait(timeout=60, progress=True)
    assert job.status() == "succeeded"
    assert job.document["progress"] == 1.0
    assert job.id in capsys.readouterr().err


# the notebook user's habits


def test_result_of_a_slice_comes_from_the_server(client: Client) -> None:
    job = client.submit("random", {"shape": [700, 500], "seed": 4}).wait(timeout=60)
    whole = seeded(4, (700, 500))
    part = job.result(slice="0:10, ::2")
    assert part.shape == (10, 250)
    assert part.tobytes() == np.ascontiguousarray(whole[0:10, ::2]).tobytes()
    small = client.submit("random", {"shape": [6, 5], "seed": 4}).wait(timeout=60)
    assert small.result(slice="-1").tobytes() == seeded(4, (6, 5))[-1].tobytes()
    assert job.output("result")[3, 100:103].result().tobytes() == whole[3, 100:103].tobytes()


def test_a_bad_slice_is_a_validation_error(client: Client) -> None:
    job = client.submit("random", {"shape": [4, 4], "seed": 1}).wait(timeout=60)
    with pytest.raises(ValidationError) as raised:
        job.result(slice="0:2, 0:2, 7")
    assert raised.value.type == "invalid_slice"


def test_cancel_of_a_finished_job_does_nothing(client: Client) -> None:
    job = client.submit("random", {"shape": [3], "seed": 2}).wait(timeout=60)
    assert job.cancel() is False
    assert job.status() == "succeeded"
    assert job.result().tobytes() == seeded(2, (3,)).tobytes()


def test_cancel_of_a_running_job_says_so(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 60})
    assert job.cancel() is True
    assert job.document["status"] == "cancelled"
    assert job.cancel() is False


def test_delete_removes_a_finished_or_running_job(client: Client) -> None:
    done = client.submit("random", {"shape": [3], "seed": 2}).wait(timeout=60)
    done.delete()
    with pytest.raises(NotFound):
        done.refresh()
    running = client.submit("sleep", {"seconds": 60})
    running.delete()
    with pytest.raises(NotFound):
        client.job(running.id)
    running.delete()  # already gone: nothing to do


def test_repr_follows_the_job_until_it_is_final(service: Service, client: Client) -> None:
    job = client.submit("sleep", {"seconds": 0.5})
    assert repr(job).startswith(f"<Job {job.id} sleep ")
    assert "queued" in repr(job) or "running" in repr(job) or "succeeded" in repr(job)
    deadline = time.monotonic() + 30
    while "succeeded" not in repr(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert repr(job) == f"<Job {job.id} sleep succeeded>"
    assert job.document["status"] == "succeeded"
    with Client(f"http://127.0.0.1:{free_port()}", retries=0) as down:
        final = Job(down, job.document)
        assert repr(final) == f"<Job {job.id} sleep succeeded>"  # final: no request made


def test_html_repr_of_a_2d_result_has_a_small_png_preview(client: Client) -> None:
    job = client.submit("random", {"shape": [600, 300], "seed": 1}).wait(timeout=60)
    page = job._repr_html_()
    assert "succeeded" in page and "random" in page
    assert "float64 (600 \N{MULTIPLICATION SIGN} 300)" in page
    image = Image.open(io.BytesIO(base64.b64decode(embedded_png(page))))
    assert image.size == (300 // 2, 600 // 3)
    assert job._repr_png_() is None  # not an image: the HTML shows it


def test_an_image_result_shows_as_png(client: Client) -> None:
    job = client.submit("mandelbrot", {"width": 64, "height": 48, "max_iter": 20}).wait()
    png = job._repr_png_()
    assert png is not None and Image.open(io.BytesIO(png)).size == (64, 48)
    assert Image.open(io.BytesIO(base64.b64decode(embedded_png(job._repr_html_())))).size == (
        64,
        48,
    )


def test_html_repr_of_a_failed_job_shows_its_error(client: Client) -> None:
    job = client.submit("fail", {"message": "<b>not bold</b>"})
    with pytest.raises(JobFailed):
        job.wait(timeout=60)
    page = job._repr_html_()
    assert "failed" in page and "&lt;b&gt;not bold&lt;/b&gt;" in page and "<img" not in page


def embedded_png(page: str) -> str:
    match = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_progress_without_a_terminal_is_plain_lines(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client.submit("sleep", {"seconds": 1.0}).wait(timeout=60, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].endswith("succeeded 100%")
    assert all("\x1b" not in line and "\r" not in line for line in lines)
    assert 2 <= len(lines) <= 14


def test_submit_with_a_job_as_input_is_not_an_object_array(client: Client) -> None:
    first = client.submit("random", {"shape": [3], "seed": 2}).wait(timeout=60)
    body = orjson.loads(
        job_body(
            "scale", {}, {"x": client._input(first), "y": client._input(first.output("result")[1:])}
        )
    )
    assert body["inputs"] == {"x": {"job": first.id}, "y": {"job": first.id, "slice": "1:"}}


def test_a_pipeline_by_reference_never_passes_results_through_the_client(client: Client) -> None:
    matrix = np.array([[2.0, 1.0], [1.0, 2.0]])
    decomposed = client.submit("eigh", x=matrix)
    seen = record_requests(client)
    # The first column of the eigenvectors, doubled, submitted before eigh has finished.
    doubled = client.submit("scale", {"factor": 2.0}, x=decomposed.output("eigenvectors")[:, 0])
    assert seen in ([("POST", "/jobs", 202)], [("POST", "/jobs", 201)])  # eigh's result not fetched
    values, vectors = np.linalg.eigh(matrix)
    assert np.array_equal(doubled.result(timeout=60), 2.0 * vectors[:, 0])
    assert np.array_equal(decomposed.output("eigenvalues").result(), values)


def record_requests(client: Client) -> list[tuple[str, str, int]]:
    """The method, path and status of every API answer the client gets from now on."""
    seen: list[tuple[str, str, int]] = []

    def record(response: httpx.Response) -> None:
        seen.append((response.request.method, response.request.url.path, response.status_code))

    client._api.event_hooks["response"].append(record)
    return seen


def test_submit_with_wait_answers_final_in_one_request(client: Client) -> None:
    seen = record_requests(client)
    job = client.submit("sleep", {"seconds": 0.3}, wait=20)
    assert job.document["status"] == "succeeded"
    assert seen == [("POST", "/jobs", 201)]


def test_submit_with_wait_returns_the_job_unfinished_after_the_wait(client: Client) -> None:
    started = time.monotonic()
    job = client.submit("sleep", {"seconds": 30}, wait=1)
    assert 0.9 <= time.monotonic() - started < 5
    assert job.document["status"] in {"queued", "running"}
    job.cancel()


def test_wait_is_one_long_poll_not_a_stream_of_polls(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 1.5})
    seen = record_requests(client)
    job.wait(timeout=60)
    assert job.document["status"] == "succeeded"
    assert seen == [("GET", f"/jobs/{job.id}", 200)]


def test_an_identical_job_is_served_from_the_cache_unless_told_not_to(client: Client) -> None:
    first = client.submit("random", {"shape": [5], "seed": 77}).wait(timeout=60)
    again = client.submit("random", {"shape": [5], "seed": 77})
    assert again.document["status"] == "succeeded"
    assert again.document["cached_from"] == first.id
    assert again.result().tobytes() == first.result().tobytes()
    fresh = client.submit("random", {"shape": [5], "seed": 77}, cache=False).wait(timeout=60)
    assert fresh.document["cached_from"] is None and fresh.document["attempts"] == 1


def test_a_job_past_its_ttl_raises_expired(client: Client) -> None:
    job = client.submit("svd", x=np.eye(2), ttl_seconds=1).wait(timeout=60)
    assert job.document["expires_at"] is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            job.refresh()
        except Expired as exc:
            assert exc.status == 410 and exc.type == "expired"
            assert exc.expired_at == job.document["expires_at"]
            break
        time.sleep(0.2)
    else:
        pytest.fail("the job did not expire")
    with pytest.raises(Expired):
        job.result()  # a final document, but the result is gone
    with pytest.raises(NotFound):  # an Expired is a NotFound
        client.job(job.id)


# inputs: inline and uploaded


def test_upload_path_round_trips_every_input(uploads_client: Client) -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.arange(6, dtype=np.int64).reshape(3, 2)
    result = uploads_client.submit("matmul", a=a, b=b).result(timeout=60)
    np.testing.assert_array_equal(result, a @ b)


def test_inputs_over_the_threshold_are_uploaded(service: Service, client: Client) -> None:
    require_uploads(service)
    x = seeded(5, (1200, 1000))  # 9.6 MB: over the 8 MiB inline limit of the client
    stats = client.submit("stats", {"axis": 0}, x=x).result(timeout=120)
    np.testing.assert_allclose(stats[0], x.mean(axis=0))
    np.testing.assert_array_equal(stats[2], x.min(axis=0))


def test_idempotency_key_returns_the_first_job(client: Client) -> None:
    first = client.submit("random", {"shape": [2]}, idempotency_key="client-idem-1")
    again = client.submit("random", {"shape": [2]}, idempotency_key="client-idem-1")
    assert again.id == first.id
    np.testing.assert_array_equal(first.result(timeout=60), again.result(timeout=60))


def test_an_unsupported_dtype_is_refused_before_sending(client: Client) -> None:
    with pytest.raises(ValidationError, match="unsupported dtype"):
        client.submit("svd", x=np.array(["a", "b"]))


# images and downloads


def test_image_of_an_image_result_is_a_png(client: Client) -> None:
    job = client.submit("mandelbrot", {"width": 64, "height": 48, "max_iter": 20})
    png = job.image()
    assert png.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(png)).size == (64, 48)


def test_image_of_a_2d_array_is_rendered(client: Client) -> None:
    job = client.submit("random", {"shape": [10, 20], "seed": 1})
    image = Image.open(io.BytesIO(job.image(cmap="magma")))
    assert (image.size, image.mode) == ((20, 10), "RGB")


def test_download_writes_a_loadable_npy(client: Client, tmp_path: Path) -> None:
    job = client.submit("random", {"shape": [300, 200], "seed": 6, "dtype": "float32"})
    saved = job.download(tmp_path / "out.npy", progress=False)
    assert saved == tmp_path / "out.npy"
    loaded = np.load(saved, allow_pickle=False)
    assert loaded.tobytes() == seeded(6, (300, 200), "float32").tobytes()
    assert [path.name for path in tmp_path.iterdir()] == ["out.npy"]


def test_download_png_with_a_progress_bar(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.submit("mandelbrot", {"width": 40, "height": 30, "max_iter": 10})
    saved = job.download(tmp_path / "fractal.png")
    with Image.open(saved) as image:
        assert image.size == (40, 30)
    assert "fractal.png" in capsys.readouterr().err


def test_url_is_a_link_that_needs_no_key(client: Client) -> None:
    job = client.submit("random", {"shape": [3], "seed": 2}).wait(timeout=60)
    response = httpx.get(job.url())
    assert response.status_code == 200
    assert codecs.read_npy(io.BytesIO(response.content), max_bytes=24).tobytes() == (
        seeded(2, (3,)).tobytes()
    )


# failures


def test_cancelled_sleep_raises_job_cancelled_from_wait(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 60})
    job.cancel()
    with pytest.raises(JobCancelled) as raised:
        job.wait(timeout=60)
    assert raised.value.job["status"] == "cancelled"
    assert job.status() == "cancelled"


def test_cancel_while_running(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 60})
    while job.status() == "queued":
        time.sleep(0.05)
    assert job.document["status"] == "running"
    job.cancel()
    with pytest.raises(JobCancelled):
        job.wait(timeout=60)


def test_singular_solve_raises_job_failed(client: Client) -> None:
    job = client.submit("solve", a=np.zeros((2, 2)), b=np.ones(2))
    with pytest.raises(JobFailed) as raised:
        job.wait(timeout=60)
    failed = raised.value
    assert failed.error_type == "LinAlgError"
    assert "ingular" in failed.error_message
    assert failed.job["status"] == "failed"
    with pytest.raises(JobFailed):
        job.result()


def test_wait_times_out_and_the_job_goes_on(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 60})
    with pytest.raises(Timeout, match=r"did not finish within 0\.3 s"):
        job.wait(timeout=0.3)
    assert job.status() in {"queued", "running"}
    job.cancel()


def test_unknown_job_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as raised:
        client.job("0" * 32)
    assert raised.value.status == 404
    with pytest.raises(NotFound):
        client.job("../ops")


def test_unknown_op_is_a_validation_error(client: Client) -> None:
    with pytest.raises(ValidationError) as raised:
        client.submit("no_such_op")
    assert raised.value.type == "unknown_op"
    assert raised.value.status == 422


# listing


def test_jobs_follows_pages_newest_first(client: Client) -> None:
    mine = [client.submit("random", {"shape": [1], "seed": seed}).id for seed in range(5)]
    listed = [job["id"] for job in client.jobs(op="random", limit=2)]
    assert len(listed) == len(set(listed))
    assert [job_id for job_id in listed if job_id in mine] == mine[::-1]


def test_jobs_filters_by_status(client: Client) -> None:
    job = client.submit("fail", {"message": "listed"})
    with pytest.raises(JobFailed):
        job.wait(timeout=60)
    failed = list(itertools.islice(client.jobs(status="failed", limit=10), 50))
    assert job.id in {item["id"] for item in failed}
    assert {item["status"] for item in failed} == {"failed"}


# the async client


def test_async_client_same_flows(service: Service, tmp_path: Path) -> None:
    async def flows() -> None:
        async with AsyncClient(service.url) as client:
            assert "matmul" in {op["name"] for op in await client.ops()}
            a, b = seeded(7, (4, 3)), seeded(8, (3, 2))
            job = await client.submit("matmul", a=a, b=b)
            assert isinstance(job, AsyncJob)
            np.testing.assert_allclose(await job.result(timeout=60), a @ b)
            assert await job.status() == "succeeded"

            large = await (await client.submit("random", {"shape": [600, 400], "seed": 9})).wait()
            assert (await large.result()).tobytes() == seeded(9, (600, 400)).tobytes()
            saved = await large.download(tmp_path / "large.npy", progress=False)
            assert np.load(saved, allow_pickle=False).tobytes() == seeded(9, (600, 400)).tobytes()

            fractal = await client.submit("mandelbrot", {"width": 32, "height": 16})
            assert (await fractal.image()).startswith(PNG_SIGNATURE)

    anyio.run(flows)


def test_async_client_errors(service: Service) -> None:
    async def errors() -> None:
        async with AsyncClient(service.url) as client:
            sleeper = await client.submit("sleep", {"seconds": 60})
            with pytest.raises(Timeout):
                await sleeper.wait(timeout=0.3)
            await sleeper.cancel()
            with pytest.raises(JobCancelled):
                await sleeper.wait(timeout=60)

            singular = await client.submit("solve", a=np.zeros((3, 3)), b=np.ones(3))
            with pytest.raises(JobFailed, match="LinAlgError"):
                await singular.wait(timeout=60)

            with pytest.raises(NotFound):
                await client.job("f" * 32)

    anyio.run(errors)


def test_async_jobs_follows_pages(service: Service) -> None:
    async def listing() -> tuple[list[str], list[str]]:
        async with AsyncClient(service.url) as client:
            mine = [(await client.submit("svd", x=np.eye(2) * n)).id for n in range(1, 4)]
            listed = [job["id"] async for job in client.jobs(op="svd", limit=1)]
            return mine, listed

    mine, listed = anyio.run(listing)
    assert [job_id for job_id in listed if job_id in mine] == mine[::-1]


def test_async_upload_path(service: Service) -> None:
    require_uploads(service)

    async def upload() -> np.ndarray:
        async with AsyncClient(service.url, upload_over_bytes=0) as client:
            return await (await client.submit("scale", {"factor": 3}, x=np.arange(5))).result()

    np.testing.assert_array_equal(anyio.run(upload), np.arange(5) * 3.0)


# transport: retries and redirects, against small real HTTP servers


class Recorder(BaseHTTPRequestHandler):
    """Answers each path from `server.routes` (status, headers, body) and records
    the headers of every request."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))  # type: ignore[attr-defined]
        routes = self.server.routes  # type: ignore[attr-defined]
        status, headers, body = routes.get(self.path.split("?")[0], (404, {}, b"{}"))
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_servers() -> Iterator[Callable[[], ThreadingHTTPServer]]:
    """Starts small HTTP servers on free ports, each its own origin."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.seen, server.routes = [], {}  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def fetch_result(url: str, job_id: str, api_key: str, use_async: bool) -> np.ndarray:
    if not use_async:
        with Client(url, api_key=api_key) as client:
            return client.job(job_id).result()

    async def fetch() -> np.ndarray:
        async with AsyncClient(url, api_key=api_key) as client:
            return await (await client.job(job_id)).result()

    return anyio.run(fetch)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_api_key_never_follows_a_redirect_to_another_origin(
    http_servers: Callable[[], ThreadingHTTPServer], use_async: bool
) -> None:
    api, store = http_servers(), http_servers()
    array = np.arange(4, dtype=np.uint16)
    document = {
        "id": "j1",
        "op": "random",
        "status": "succeeded",
        "result": {"dtype": "uint16", "shape": [4], "nbytes": 8, "formats": ["npy"]},
    }
    store_url = f"{url_of(store)}/bucket/j1.npy?X-Amz-Signature=abc"
    api.routes.update(  # type: ignore[attr-defined]
        {
            "/jobs/j1": (200, {"Content-Type": "application/json"}, orjson.dumps(document)),
            "/jobs/j1/result": (307, {"Location": store_url}, b""),
        }
    )
    npy = b"".join(codecs.npy_chunks(array))
    store.routes["/bucket/j1.npy"] = (200, {}, npy)  # type: ignore[attr-defined]
    result = fetch_result(url_of(api), "j1", "secret-key", use_async)
    np.testing.assert_array_equal(result, array)
    api_headers = [headers for _, headers in api.seen]  # type: ignore[attr-defined]
    store_seen = store.seen  # type: ignore[attr-defined]
    assert all(headers.get("Authorization") == "Bearer secret-key" for headers in api_headers)
    assert [path for path, _ in store_seen] == ["/bucket/j1.npy?X-Amz-Signature=abc"]
    assert "Authorization" not in store_seen[0][1]


def job_document(job_id: str, status: str, progress: float = 0.0) -> dict[str, object]:
    return {"id": job_id, "op": "sleep", "status": status, "progress": progress, "result": None}


def sse(*documents: dict[str, object]) -> bytes:
    events = [b"event: status\ndata: " + orjson.dumps(doc) + b"\n\n" for doc in documents]
    return b": keep-alive\n\n".join(events)


def test_wait_follows_the_event_stream(http_servers: Callable[[], ThreadingHTTPServer]) -> None:
    api = http_servers()
    running, done = job_document("j2", "running", 0.5), job_document("j2", "succeeded", 1.0)
    api.routes.update(  # type: ignore[attr-defined]
        {
            "/jobs/j2": (200, {"Content-Type": "application/json"}, orjson.dumps(running)),
            "/jobs/j2/events": (200, {"Content-Type": "text/event-stream"}, sse(running, done)),
        }
    )
    with Client(url_of(api)) as client:
        job = client.job("j2").wait(timeout=10, progress=True)
    assert job.document == done
    assert [path for path, _ in api.seen] == ["/jobs/j2", "/jobs/j2/events"]  # type: ignore[attr-defined]


def test_wait_polls_when_there_is_no_event_stream(
    http_servers: Callable[[], ThreadingHTTPServer],
) -> None:
    api = http_servers()
    done = job_document("j3", "succeeded", 1.0)
    api.routes["/jobs/j3"] = (200, {}, orjson.dumps(done))  # type: ignore[attr-defined]
    with Client(url_of(api)) as client:
        job = Job(client, job_document("j3", "running"))
        assert job.wait(timeout=10, progress=True).document == done
    assert [path for path, _ in api.seen] == ["/jobs/j3/events", "/jobs/j3"]  # type: ignore[attr-defined]


def test_async_wait_follows_the_event_stream(
    http_servers: Callable[[], ThreadingHTTPServer],
) -> None:
    api = http_servers()
    running, done = job_document("j4", "running", 0.5), job_document("j4", "cancelled", 0.5)
    api.routes["/jobs/j4/events"] = (  # type: ignore[attr-defined]
        200,
        {"Content-Type": "text/event-stream"},
        sse(running, done),
    )

    async def wait() -> None:
        async with AsyncClient(url_of(api)) as client:
            await AsyncJob(client, running).wait(timeout=10, progress=True)

    with pytest.raises(JobCancelled):
        anyio.run(wait)
    assert [path for path, _ in api.seen] == ["/jobs/j4/events"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_wait_is_a_long_poll_with_prefer_wait(
    http_servers: Callable[[], ThreadingHTTPServer], use_async: bool
) -> None:
    api = http_servers()
    done = job_document("j5", "succeeded", 1.0)
    api.routes["/jobs/j5"] = (200, {}, orjson.dumps(done))  # type: ignore[attr-defined]
    running = job_document("j5", "running")
    if use_async:

        async def wait() -> dict[str, object]:
            async with AsyncClient(url_of(api)) as client:
                return (await AsyncJob(client, running).wait(timeout=30)).document

        assert anyio.run(wait) == done
    else:
        with Client(url_of(api)) as client:
            assert Job(client, running).wait(timeout=30).document == done
    ((path, headers),) = api.seen  # type: ignore[attr-defined]
    assert path == "/jobs/j5"
    assert re.fullmatch(r"wait=(29|30)", headers["Prefer"])


def test_503_is_retried_then_raised(http_servers: Callable[[], ThreadingHTTPServer]) -> None:
    http_server = http_servers()
    busy = (503, {"Retry-After": "0"}, b'{"error": {"type": "redis_unavailable", "message": "x"}}')
    http_server.routes["/ops"] = busy  # type: ignore[attr-defined]
    with Client(url_of(http_server), retries=2) as client, pytest.raises(ServiceUnavailable):
        client.ops()
    assert len(http_server.seen) == 3  # type: ignore[attr-defined]


def test_dropped_connections_are_retried_then_raised() -> None:
    accepted = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def drop() -> None:
            for _ in range(3):
                connection, _ = listener.accept()
                accepted.append(connection)
                connection.close()

        thread = threading.Thread(target=drop, daemon=True)
        thread.start()
        host, port = listener.getsockname()
        url = f"http://{host}:{port}"
        with Client(url, retries=2) as client, pytest.raises(ServiceUnavailable):
            client.job("abc")
        thread.join(5)
    assert len(accepted) == 3


def test_refused_connections_raise_service_unavailable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with Client(url, retries=2) as client, pytest.raises(ServiceUnavailable):
        client.ops()


# API keys, and results from S3 through presigned links


@pytest.fixture(scope="module")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("client-s3")
    with seaweed_s3(root / "s3") as server:
        running = start_service(
            root / "service",
            workers=1,
            storage_url=server.url("client-results"),
            extra_env={"ARRAYQ_API_KEYS": "client-key:tenant-a,other-key:tenant-b"},
        )
        try:
            yield running
        finally:
            running.stop()


@pytest.mark.s3
def test_api_key_and_presigned_results(s3_service: Service) -> None:
    with Client(s3_service.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.ops()
    with Client(s3_service.url, api_key="client-key") as client:
        job = client.submit("random", {"shape": [500, 400], "seed": 11}).wait(timeout=60)
        assert job.result().tobytes() == seeded(11, (500, 400)).tobytes()
        assert job.url().startswith("http://127.0.0.1:")
        with Client(s3_service.url, api_key="other-key") as other, pytest.raises(NotFound):
            other.job(job.id)


@pytest.mark.s3
def test_api_key_from_the_environment(s3_service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARRAYQ_URL", s3_service.url)
    monkeypatch.setenv("ARRAYQ_API_KEY", "client-key")
    with Client() as client:
        assert client.base_url == s3_service.url
        assert client.submit("svd", x=np.eye(3)).result(timeout=60).tolist() == [1.0, 1.0, 1.0]
