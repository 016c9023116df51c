"""What writes cut off by a killed process leave behind is removed: temporary
files on local storage (by the workers' cleanup), incomplete multipart uploads
on S3 (a bucket lifecycle rule, and aborted by the cleanup)."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from arrayq.client.processes import wait_until
from arrayq.storage.s3 import S3Store
from tests.support.faults import own_service
from tests.support.seaweed import S3Server, seaweed_s3

HOUR = timedelta(hours=1)


CUT_OFF = """
import os, signal, sys
from arrayq.storage.s3 import WRITER_PART_SIZE
from arrayq.storage.stores import resolve_store
writer = resolve_store(sys.argv[1]).begin_write(sys.argv[2], 3 * WRITER_PART_SIZE)
writer.write(bytes(WRITER_PART_SIZE + 1))
os.kill(os.getpid(), signal.SIGKILL)
"""


def cut_off_write(storage_url: str, key: str) -> None:
    """A write begun and never finished: a real process SIGKILLed mid-upload."""
    done = subprocess.run([sys.executable, "-c", CUT_OFF, storage_url, key], timeout=60)
    assert done.returncode == -signal.SIGKILL


def backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_workers_sweep_temp_files_older_than_an_hour(tmp_path):
    data = tmp_path / "data"
    env = {"ARRAYQ_CLEANUP_INTERVAL_SECONDS": "1"}
    with own_service(tmp_path / "svc", workers=1, storage_url=f"file://{data}", extra_env=env):
        cut_off_write(f"file://{data}", "uploads/t-00/old.npy")
        cut_off_write(f"file://{data}", "results/t-00/fresh.npy")
        [old] = (data / "uploads").rglob(".tmp-*")
        [fresh] = (data / "results").rglob(".tmp-*")
        backdate(old, 2 * 3600)
        wait_until(lambda: not old.exists(), 30, "the sweep of the old temp file")
        assert fresh.exists()  # a write in progress is left alone


@pytest.mark.s3
def test_s3_incomplete_multipart_uploads_are_aborted_and_expire_by_rule(seaweed: S3Server):
    url = seaweed.url(f"test-{uuid.uuid4().hex[:16]}")
    store = S3Store.from_url(url)
    store.prepare(timedelta(days=7))
    cut_off_write(url, "uploads/t-00/cut.npy")
    listing = store._client._list_multipart_uploads(store.bucket)
    assert [upload.object_name for upload in listing.uploads] == ["uploads/t-00/cut.npy"]

    assert store.delete_leftovers(HOUR) == 0  # started just now: may still be alive
    assert store.delete_leftovers(timedelta(0)) == 1
    assert store._client._list_multipart_uploads(store.bucket).uploads == []
    assert not store.exists("uploads/t-00/cut.npy")


@pytest.mark.s3
def test_s3_prepare_sets_the_abort_incomplete_uploads_rule(seaweed: S3Server):
    store = S3Store.from_url(seaweed.url(f"test-{uuid.uuid4().hex[:16]}"))
    store.prepare(timedelta(days=7))
    config = store._client.get_bucket_lifecycle(bucket_name=store.bucket)
    rules = {rule.rule_id: rule for rule in config.rules}
    abort = rules["arrayq-abort-incomplete-uploads"].abort_incomplete_multipart_upload
    assert abort is not None and abort.days_after_initiation == 1
    assert rules["arrayq-expiry"].expiration.days == 7


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweed_s3(tmp_path_factory.mktemp("s3")) as server:
        yield server
