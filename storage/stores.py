"""The object store interface, and the one function that picks a store from the URL."""

from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from arrayq.storage.settings import Settings


class ObjectWriter(Protocol):
    """One object written piece by piece. Every call is short (it never waits
    for the producer), so a slow client holds no thread between pieces."""

    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self) -> None:
        """Make the object visible, whole; ValueError unless exactly the declared length came."""

    def abort(self) -> None:
        """Drop what was written; idempotent."""


class ObjectStore(Protocol):
    """Where inputs and results live. Keys come from `storage.keys` only.

    Implementations translate their library's errors into `storage.errors`
    (`NotFound`, `StorageUnavailable`).
    """

    def check(self) -> None:
        """Raise `StorageUnavailable` unless the store can be used (readiness)."""

    def prepare(self, expire_after: timedelta) -> None:
        """Set the store up at start-up (the bucket, an expiry rule where the store
        has them); idempotent, so every process may call it."""

    def write(self, key: str, chunks: Iterable[bytes | memoryview], length: int) -> None:
        """Store `length` bytes given as chunks, atomically: readers see the whole
        object or none. Chunks are consumed as produced (no second full copy)."""

    def copy(self, source: str, target: str) -> None:
        """Make `target` an object with the bytes of `source`, inside the store (no
        bytes through this process); `NotFound` when `source` is missing. Deleting
        either afterwards leaves the other whole."""

    def begin_write(self, key: str, length: int) -> ObjectWriter:
        """Start an atomic write of `length` bytes fed by `ObjectWriter.write`."""

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the whole object. Close it after use."""

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes from offset `start`."""

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes from offset `start`, in chunks, memory bounded."""

    def size(self, key: str) -> int:
        """Size in bytes; `NotFound` when missing."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Delete one object; missing is fine."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under the prefix."""

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk holding the object, if the store is local."""

    def presigned_url(self, key: str, ttl: timedelta) -> str | None:
        """A GET URL for clients, signed for the public endpoint; None for local stores."""

    def delete_older_than(self, age: timedelta) -> int:
        """Delete objects last written more than `age` ago; returns how many."""

    def delete_leftovers(self, age: timedelta) -> int:
        """Remove what writes cut off by a killed process left behind more than
        `age` ago (temporary files, incomplete multipart uploads); returns how many."""


def store_from_settings(settings: "Settings") -> ObjectStore:
    return resolve_store(
        settings.storage_url,
        public_endpoint=settings.s3_public_endpoint,
        region=settings.s3_region,
        min_free_bytes=settings.storage_min_free_bytes,
    )


def resolve_store(
    url: str,
    *,
    public_endpoint: str | None = None,
    region: str = "us-east-1",
    min_free_bytes: int = 0,
) -> ObjectStore:
    """`file://DIR` (relative or absolute) or `s3://ACCESS:SECRET@host:port/bucket`."""
    if url.startswith("file://"):
        from arrayq.storage.local import LocalStore

        root = Path(unquote(url.removeprefix("file://")))
        return LocalStore(root, min_free_bytes=min_free_bytes)
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from arrayq.storage.s3 import S3Store

        return S3Store.from_url(url, public_endpoint=public_endpoint, region=region)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (use file:// or s3://)")
