"""On S3 a Zarr chunk costs the store exactly one ranged GET.

The API runs in this process (uvicorn in a thread, real HTTP over loopback)
on the `s3_service`'s Redis and bucket, so the requests its real minio client
sends to SeaweedFS can be counted at the client's HTTP pool.
"""

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import uvicorn
import zarr

from arrayq.api.app import create_app
from arrayq.client.processes import free_port
from arrayq.storage.settings import Settings
from tests.support.jobs import run

pytestmark = pytest.mark.s3

SHAPE = (1500, 1000)
ROW_BYTES = SHAPE[1] * 8
CHUNK_ROWS = 1048


class CountingPool:
    """The store client's real urllib3 pool, noting each request it sends."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.requests: list[tuple[str, str, str | None]] = []

    def urlopen(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = kwargs.get("headers") or {}
        self.requests.append((method, urlsplit(url).path, headers.get("Range")))
        return self._real.urlopen(method, url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture(scope="module")
def counted_api(s3_service) -> Iterator[tuple[str, CountingPool]]:
    settings = Settings(redis_url=s3_service.redis_url, storage_url=s3_service.storage_url)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the in-process API did not start"
        time.sleep(0.05)
    store = app.state.backends.store
    pool = CountingPool(store._client._http)
    store._client._http = pool
    try:
        yield f"http://127.0.0.1:{server.config.port}", pool
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_a_chunk_is_one_ranged_get(s3_service, counted_api):
    url, pool = counted_api
    with s3_service.client() as http:
        job = run(http, "random", {"shape": list(SHAPE), "seed": 9})
    expected = np.random.default_rng(9).standard_normal(SHAPE)
    view = f"{url}/jobs/{job['id']}/result.zarr"

    metadata = httpx.get(f"{view}/zarr.json")
    assert metadata.status_code == 200
    assert [method for method, _, _ in pool.requests] == ["GET"]  # the .npy header, once
    (_, object_path, header_range) = pool.requests[0]
    assert header_range is not None and header_range.startswith("bytes=0-")
    pool.requests.clear()

    chunk = httpx.get(f"{view}/c/1/0")
    assert chunk.status_code == 200
    offset = 128  # the .npy header of a 2-D float64 array
    start = offset + CHUNK_ROWS * ROW_BYTES
    end = offset + SHAPE[0] * ROW_BYTES - 1
    assert pool.requests == [("GET", object_path, f"bytes={start}-{end}")]
    rows = np.frombuffer(chunk.content, dtype="<f8").reshape(CHUNK_ROWS, SHAPE[1])
    np.testing.assert_array_equal(rows[: SHAPE[0] - CHUNK_ROWS], expected[CHUNK_ROWS:])
    pool.requests.clear()

    assert httpx.head(f"{view}/c/0/0").status_code == 200
    assert pool.requests == []  # HEAD answers from the cached layout

    array = zarr.open_array(view, mode="r")
    np.testing.assert_array_equal(array[10:200:3, ::7], expected[10:200:3, ::7])
    first_chunk = f"bytes={offset}-{offset + CHUNK_ROWS * ROW_BYTES - 1}"
    assert pool.requests == [("GET", object_path, first_chunk)]  # metadata from the cache
