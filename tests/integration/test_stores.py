"""The object store contract, held by `LocalStore` and by `S3Store` on a real SeaweedFS."""

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

from arrayq.storage.errors import NotFound, StorageUnavailable
from arrayq.storage.local import LocalStore
from arrayq.storage.s3 import PART_SIZE, S3Store
from arrayq.storage.stores import ObjectStore, resolve_store
from tests.support.seaweed import S3Server, free_ports, seaweed_s3

KEY = "results/t-00/0123456789abcdef0123456789abcdef.npy"
MISSING = "results/t-00/ffffffffffffffffffffffffffffffff.npy"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweed_s3(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return resolve_store(f"file://{tmp_path / 'store'}")
    server: S3Server = request.getfixturevalue("seaweed")
    return resolve_store(server.url(new_bucket()))


@pytest.fixture
def s3_store(seaweed: S3Server) -> S3Store:
    return S3Store.from_url(seaweed.url(new_bucket()))


def new_bucket() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# The contract, for both stores


def test_written_object_reads_back_whole(store: ObjectStore) -> None:
    store.write(KEY, [b"hello ", b"", memoryview(b"world")], 11)

    with store.open(KEY) as stream:
        assert stream.read() == b"hello world"
    assert store.size(KEY) == 11
    assert store.exists(KEY)


def test_a_second_write_replaces_the_object(store: ObjectStore) -> None:
    store.write(KEY, [b"first version"], 13)
    store.write(KEY, [b"second"], 6)

    assert store.read_range(KEY, 0, 100) == b"second"


def test_ranges_read_the_requested_bytes(store: ObjectStore) -> None:
    data = bytes(range(256)) * 16
    store.write(KEY, pieces(data, 1000), len(data))

    assert store.read_range(KEY, 100, 50) == data[100:150]
    assert store.read_range(KEY, 4000, 500) == data[4000:]
    assert store.read_range(KEY, 5000, 10) == b""
    assert store.read_range(KEY, 0, 0) == b""
    assert b"".join(store.iter_range(KEY, 10, 4000)) == data[10:4010]


def test_empty_object(store: ObjectStore) -> None:
    store.write(KEY, iter([]), 0)

    assert store.size(KEY) == 0
    with store.open(KEY) as stream:
        assert stream.read() == b""


@pytest.mark.parametrize(
    "read",
    [
        lambda store, key: store.open(key),
        lambda store, key: store.size(key),
        lambda store, key: store.read_range(key, 0, 10),
        lambda store, key: list(store.iter_range(key, 0, 10)),
    ],
    ids=["open", "size", "read_range", "iter_range"],
)
def test_missing_object_is_not_found(
    store: ObjectStore, read: Callable[[ObjectStore, str], object]
) -> None:
    with pytest.raises(NotFound):
        read(store, MISSING)


def test_missing_object_does_not_exist_and_deletes_quietly(store: ObjectStore) -> None:
    assert not store.exists(MISSING)
    store.delete(MISSING)
    store.delete_prefix("inputs/nothing-here/")


def test_delete_removes_one_object(store: ObjectStore) -> None:
    store.write(KEY, [b"x"], 1)
    store.write(MISSING, [b"y"], 1)

    store.delete(KEY)

    assert not store.exists(KEY)
    assert store.exists(MISSING)


def test_delete_prefix_removes_only_what_is_under_it(store: ObjectStore) -> None:
    keys = ["inputs/t-00/job/0.npy", "inputs/t-00/job/1.npy", "inputs/t-00/job2/0.npy", KEY]
    for key in keys:
        store.write(key, [b"data"], 4)

    store.delete_prefix("inputs/t-00/job/")

    assert [store.exists(key) for key in keys] == [False, False, True, True]


def test_delete_prefix_that_is_no_folder_matches_key_beginnings(store: ObjectStore) -> None:
    keys = ["results/t-00/job.npy", "results/t-00/job.png", "results/t-00/job/r1/a.npy"]
    others = ["results/t-00/jo.npy", "results/t-00/other.npy", "results/t-01/job.npy"]
    for key in keys + others:
        store.write(key, [b"data"], 4)

    store.delete_prefix("results/t-00/job")

    assert [store.exists(key) for key in keys + others] == [False] * 3 + [True] * 3


@pytest.mark.parametrize("chunks", [[b"short"], [b"much too long"]], ids=["short", "long"])
def test_chunks_that_miss_the_declared_length_store_nothing(
    store: ObjectStore, chunks: list[bytes]
) -> None:
    with pytest.raises(ValueError):
        store.write(KEY, iter(chunks), 8)

    assert not store.exists(KEY)


def test_large_array_written_from_memoryviews_comes_back_identical(store: ObjectStore) -> None:
    array = np.random.default_rng(7).standard_normal(5_000_000)
    chunks = (memoryview(array[start : start + 300_000]) for start in range(0, array.size, 300_000))
    assert array.nbytes > 2 * PART_SIZE

    store.write(KEY, chunks, array.nbytes)

    with store.open(KEY) as stream:
        assert np.array_equal(np.frombuffer(stream.read(), dtype=array.dtype), array)
    tail = list(store.iter_range(KEY, 8, array.nbytes))
    assert len(tail) > 1
    assert np.array_equal(np.frombuffer(b"".join(tail), dtype=array.dtype), array[1:])


def test_delete_older_than_removes_old_objects_only(store: ObjectStore) -> None:
    store.write("results/old.npy", [b"old"], 3)
    time.sleep(2.1)
    store.write("results/new.npy", [b"new"], 3)

    assert store.delete_older_than(timedelta(seconds=1.5)) == 1

    assert not store.exists("results/old.npy")
    assert store.exists("results/new.npy")


def test_only_the_local_store_has_local_paths(store: ObjectStore) -> None:
    store.write(KEY, [b"abc"], 3)

    path = store.local_path(KEY)

    if isinstance(store, LocalStore):
        assert path is not None and path.read_bytes() == b"abc"
        assert store.presigned_url(KEY, timedelta(minutes=1)) is None
    else:
        assert path is None


# S3 only


@pytest.mark.s3
def test_bucket_is_created_when_missing(seaweed: S3Server) -> None:
    checked, written = new_bucket(), new_bucket()
    admin = seaweed.client()

    S3Store.from_url(seaweed.url(checked)).check()
    S3Store.from_url(seaweed.url(written)).write(KEY, [b"abc"], 3)

    assert admin.bucket_exists(bucket_name=checked)
    assert admin.bucket_exists(bucket_name=written)


@pytest.mark.s3
def test_large_objects_are_uploaded_in_parts(s3_store: S3Store, seaweed: S3Server) -> None:
    data = bytes(2 * PART_SIZE + 1)

    s3_store.write(KEY, pieces(data, 1 << 20), len(data))

    stat = seaweed.client().stat_object(bucket_name=s3_store.bucket, object_name=KEY)
    assert stat.etag is not None and stat.etag.endswith("-3")


@pytest.mark.s3
def test_presigned_url_downloads_the_array(seaweed: S3Server) -> None:
    public = f"localhost:{seaweed.ports['s3.port']}"
    store = S3Store.from_url(seaweed.url(new_bucket()), public_endpoint=public)
    array = np.arange(12.0).reshape(3, 4)
    data = npy_bytes(array)
    store.write(KEY, [data], len(data))

    url = store.presigned_url(KEY, timedelta(minutes=5))

    assert url is not None and urlsplit(url).netloc == public
    response = httpx.get(url)
    assert response.status_code == 200
    assert np.array_equal(np.load(io.BytesIO(response.content), allow_pickle=False), array)


@pytest.mark.s3
def test_store_refuses_tampered_and_expired_urls(s3_store: S3Store) -> None:
    s3_store.write(KEY, [b"secret result"], 13)
    url = s3_store.presigned_url(KEY, timedelta(seconds=1))
    assert url is not None

    assert httpx.get(tampered(url)).status_code == 403
    time.sleep(2)
    assert httpx.get(url).status_code == 403


def tampered(url: str) -> str:
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return url.replace(signature, flipped)


def test_signing_makes_no_network_call() -> None:
    internal, public = free_ports(2)
    store = S3Store.from_url(
        f"s3://key:secret@127.0.0.1:{internal}/results",
        public_endpoint=f"https://127.0.0.1:{public}",
    )

    url = store.presigned_url(KEY, timedelta(minutes=15))

    assert url is not None and url.startswith(f"https://127.0.0.1:{public}/results/{KEY}?")
    with pytest.raises(StorageUnavailable):
        store.size(KEY)


@pytest.mark.s3
def test_expiry_rule_is_installed(s3_store: S3Store, seaweed: S3Server) -> None:
    s3_store.check()

    assert s3_store.set_expiry(7) is True

    config = seaweed.client().get_bucket_lifecycle(bucket_name=s3_store.bucket)
    assert config is not None
    assert [rule.expiration.days for rule in config.rules if rule.expiration] == [7]


@pytest.mark.s3
def test_store_down_fails_fast_then_recovers(tmp_path: Path) -> None:
    with seaweed_s3(tmp_path) as server:
        store = S3Store.from_url(server.url("survivor"))
        store.write(KEY, [b"kept"], 4)
        server.stop()

        untouched = (chunk for chunk in [b"never read"])
        for call in unavailable_calls(store, untouched):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                call()
            assert time.monotonic() - started < 10
        assert next(untouched) == b"never read"

        restart = threading.Thread(target=server.start)
        restart.start()
        store.write(MISSING, (chunk for chunk in [b"written ", b"while starting"]), 22)
        restart.join()

        assert store.read_range(KEY, 0, 10) == b"kept"
        assert store.read_range(MISSING, 0, 100) == b"written while starting"


def unavailable_calls(store: S3Store, chunks: Iterator[bytes]) -> list[Callable[[], object]]:
    return [
        store.check,
        lambda: store.open(KEY),
        lambda: store.size(KEY),
        lambda: store.exists(KEY),
        lambda: store.read_range(KEY, 0, 4),
        lambda: list(store.iter_range(KEY, 0, 4)),
        lambda: store.delete(KEY),
        lambda: store.delete_prefix("results/"),
        lambda: store.delete_older_than(timedelta(0)),
        lambda: store.write(KEY, chunks, 10),
    ]


# Storage URLs


def test_s3_url_gives_endpoint_bucket_and_tls() -> None:
    store = resolve_store("s3://AKEY:se%2Fcret@store.internal:9000/arrays?secure=true")

    assert isinstance(store, S3Store)
    assert (store.endpoint, store.bucket) == ("store.internal:9000", "arrays")
    url = store.presigned_url(KEY, timedelta(minutes=1))
    assert url is not None and url.startswith("https://store.internal:9000/arrays/")
    assert "cret" not in repr(store)


@pytest.mark.parametrize(
    "url",
    [
        "s3://store:9000/bucket",
        "s3://key@store:9000/bucket",
        "s3://key:secret@store:9000/",
        "s3://key:secret@store:9000/bucket/extra",
        "s3://key:secret@store:port/bucket",
        "s3://key:secret@store:9000/Not_A_Bucket",
        "s3://key:secret@store:9000/bucket?secure=maybe",
        "s3://key:secret@store:9000/bucket?region=eu",
        "s3://key:secret@/bucket",
    ],
)
def test_malformed_s3_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        S3Store.from_url(url)
