"""A full disk under local storage, for real: a small tmpfs mounted as the
storage folder (needs root; skipped otherwise) and filled up with a file.

Uploads and inline inputs answer 507 storage_full, a job whose result finds no
space fails with storage_full, /readyz says so, the results already stored
stay whole, and everything works again once space returns."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.test_bad_input_matrix import npy_bytes
from tests.support.faults import own_service
from tests.support.jobs import array_json, run, wait_for
from tests.support.service import Service


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("disk")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory, disk: Path) -> Iterator[Service]:
    env = {"ARRAYQ_STORAGE_MIN_FREE_BYTES": str(1 << 20)}
    root = tmp_path_factory.mktemp("small-disk")
    with own_service(root, workers=1, storage_url=f"file://{disk}", extra_env=env) as service:
        yield service


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as file:
        try:
            while True:
                file.write(bytes(1 << 20))
                file.flush()
        except OSError:
            pass
    return filler


def upload(http: httpx.Client, array: np.ndarray) -> httpx.Response:
    return http.post(
        "/uploads", content=npy_bytes(array), headers={"Content-Type": "application/x-npy"}
    )


def test_full_disk_is_507_storage_full_and_recovers(small_disk, disk):
    with small_disk.client() as http:
        stored = run(http, "random", {"shape": [200, 200], "seed": 3})
        before = http.get(f"/jobs/{stored['id']}/result?format=npy").content
        filler = fill(disk)
        try:
            refused = upload(http, np.ones(300_000))
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"]["type"] == "storage_full"

            inline = {"op": "svd", "inputs": {"x": array_json(np.ones((300, 300)), base64=True)}}
            refused = http.post("/jobs", json=inline)
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"]["type"] == "storage_full"

            job = http.post("/jobs", json={"op": "random", "params": {"shape": [600, 600]}})
            failed = wait_for(http, job.json()["id"], timeout=60)
            assert failed["status"] == "failed", failed
            assert failed["error"]["type"] == "storage_full"

            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["storage"].startswith("full")
            assert http.get(f"/jobs/{stored['id']}/result?format=npy").content == before
        finally:
            os.unlink(filler)

        assert http.get("/readyz").status_code == 200
        assert upload(http, np.ones(300_000)).status_code == 201
        assert run(http, "random", {"shape": [600, 600]})["status"] == "succeeded"
        assert http.get(f"/jobs/{stored['id']}/result?format=npy").content == before
    leftovers = [path for path in disk.rglob(".tmp-*")]
    assert leftovers == []
