"""Object store on any S3 service (SeaweedFS, MinIO, AWS) through the `minio` SDK.

Construction makes no network call, so the API can start while the store is
down. The bucket is created, if missing, by `ensure_bucket()`, which `check()`
(readiness, at start-up) and every `write` call.
"""

import io
import logging
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, CopySource, Filter
from minio.datatypes import Object, Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import check_bucket_name
from minio.lifecycleconfig import (
    AbortIncompleteMultipartUpload,
    Expiration,
    LifecycleConfig,
    Rule,
)

from arrayq.storage.errors import NotFound, StorageFull, StorageUnavailable
from arrayq.storage.retry import retry_unavailable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)


PART_SIZE = 16 << 20
# Parts of an object written piece by piece (uploads): S3's smallest but one
# size, so a slow upload holds little memory.
WRITER_PART_SIZE = 8 << 20
_READ_CHUNK = 1 << 20
# A stopped store refuses connections at once; these bound the other cases
# (an unreachable host, a hung server) to seconds instead of minutes.
_TIMEOUT = urllib3.Timeout(connect=2.0, read=60.0)
_REQUEST_RETRIES = urllib3.Retry(
    total=2,
    backoff_factor=0.2,
    status_forcelist=(500, 502, 503, 504),
    raise_on_status=False,
)
_WRITE_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"})
_EXISTING_BUCKET_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_FULL_CODES = frozenset({"XMinioStorageFull", "InsufficientStorage", "StorageFull"})
_UNREACHABLE = (urllib3.exceptions.HTTPError, ServerError, InvalidResponseError)


# Served as is by presigned URLs, so objects carry the media type of their format.
_CONTENT_TYPES = {"npy": "application/x-npy", "png": "image/png"}


class S3Store:
    """Objects in one bucket of an S3 service; presigned URLs are signed for
    `public_endpoint` (the address clients reach) by a second client that knows
    the region, so signing never asks the store anything."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str = "us-east-1",
        public_endpoint: str | None = None,
    ) -> None:
        check_bucket_name(bucket_name=bucket, strict=True)
        self.bucket = bucket
        self.endpoint = endpoint
        http = _pool_manager()
        credentials = {"access_key": access_key, "secret_key": secret_key, "region": region}
        self._client = Minio(endpoint=endpoint, secure=secure, http_client=http, **credentials)
        public_host, public_secure = _split_endpoint(public_endpoint or endpoint, secure)
        self._signer = Minio(
            endpoint=public_host, secure=public_secure, http_client=http, **credentials
        )

    @classmethod
    def from_url(
        cls, url: str, *, public_endpoint: str | None = None, region: str = "us-east-1"
    ) -> "S3Store":
        """`s3://ACCESS:SECRET@host:port/bucket[?secure=true]`; percent-encode any
        `/`, `@` or `:` inside the credentials."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError("storage URL must look like s3://ACCESS:SECRET@host:port/bucket")
        if not parts.username or not parts.password:
            raise ValueError("s3:// storage URL needs credentials: s3://ACCESS:SECRET@host/bucket")
        return cls(
            endpoint=_endpoint(parts),
            access_key=unquote(parts.username),
            secret_key=unquote(parts.password),
            bucket=_bucket(parts.path),
            secure=_secure(parts.query),
            region=region,
            public_endpoint=public_endpoint,
        )

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    def ensure_bucket(self) -> bool:
        """Create the bucket unless it exists; True when this call created it."""
        with _translated(self.bucket):
            if self._client.bucket_exists(bucket_name=self.bucket):
                return False
            try:
                self._client.make_bucket(bucket_name=self.bucket)
            except S3Error as exc:
                if exc.code in _EXISTING_BUCKET_CODES:
                    return False
                raise
        log.info("created bucket %s on %s", self.bucket, self.endpoint)
        return True

    def check(self) -> None:
        self.ensure_bucket()

    def prepare(self, expire_after: timedelta) -> None:
        self.ensure_bucket()
        self.set_expiry(max(1, math.ceil(expire_after.total_seconds() / 86400)))

    def write(self, key: str, chunks: Iterable[bytes | memoryview], length: int) -> None:
        """Stream the chunks into the object, multipart beyond `PART_SIZE`, holding
        one part in memory. A store that is briefly away is waited for (with
        backoff) before any chunk is consumed; the upload itself is retried only
        when the chunks can be replayed (a list, not a one-shot generator)."""
        retry_unavailable(
            self.ensure_bucket, _WRITE_RETRY_DELAYS
        )  # also waits for a store that is briefly away
        upload = partial(self._put, key, chunks, length)
        if iter(chunks) is chunks:
            upload()
        else:
            retry_unavailable(upload, _WRITE_RETRY_DELAYS)

    def _put(self, key: str, chunks: Iterable[bytes | memoryview], length: int) -> None:
        reader = _ChunkReader(chunks, length)
        with _translated(key):
            self._client.put_object(
                bucket_name=self.bucket,
                object_name=key,
                data=reader,
                length=length,
                part_size=PART_SIZE,
                num_parallel_uploads=1,
                content_type=_content_type(key),
            )

    def copy(self, source: str, target: str) -> None:
        with _translated(source):
            self._client.copy_object(
                bucket_name=self.bucket,
                object_name=target,
                source=CopySource(self.bucket, source),
            )

    def begin_write(self, key: str, length: int) -> "S3Writer":
        retry_unavailable(self.ensure_bucket, _WRITE_RETRY_DELAYS)
        return S3Writer(self._client, self.bucket, key, length, _content_type(key))

    def delete_leftovers(self, age: timedelta) -> int:
        """Abort multipart uploads started more than `age` ago (their writer died)."""
        cutoff = datetime.now(UTC) - age
        aborted = 0
        while True:
            with _translated(self.bucket):
                listing = self._client._list_multipart_uploads(self.bucket, max_uploads=1000)
            stale = [u for u in listing.uploads if u.initiated_time and u.initiated_time < cutoff]
            for upload in stale:
                with suppress(NotFound), _translated(upload.object_name):
                    self._client._abort_multipart_upload(
                        self.bucket, upload.object_name, str(upload.upload_id)
                    )
                aborted += 1
            if not listing.is_truncated or not stale:
                return aborted

    def open(self, key: str) -> BinaryIO:
        with _translated(key):
            response = self._client.get_object(bucket_name=self.bucket, object_name=key)
        return io.BufferedReader(_ResponseStream(response, key), buffer_size=_READ_CHUNK)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        return b"".join(self.iter_range(key, start, length))

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        with _translated(key):
            try:
                response = self._client.get_object(
                    bucket_name=self.bucket, object_name=key, offset=start, length=length
                )
            except S3Error as exc:
                if exc.code == "InvalidRange":
                    return
                raise
        with io.BufferedReader(_ResponseStream(response, key)) as stream:
            while chunk := stream.read(_READ_CHUNK):
                yield chunk

    def size(self, key: str) -> int:
        with _translated(key):
            stat = self._client.stat_object(bucket_name=self.bucket, object_name=key)
        return int(stat.size or 0)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        with suppress(NotFound), _translated(key):
            self._client.remove_object(bucket_name=self.bucket, object_name=key)

    def delete_prefix(self, prefix: str) -> None:
        self._remove(obj.object_name for obj in self._list(prefix))

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, ttl: timedelta) -> str | None:
        return self._signer.presigned_get_object(
            bucket_name=self.bucket, object_name=key, expires=ttl
        )

    def delete_older_than(self, age: timedelta) -> int:
        cutoff = datetime.now(UTC) - age
        names = [
            obj.object_name
            for obj in self._list("")
            if obj.last_modified is not None and obj.last_modified < cutoff
        ]
        return self._remove(names)

    def set_expiry(self, days: int) -> bool:
        """Install a lifecycle rule that expires every object `days` after it was
        written; False (logged) when the store does not support lifecycle rules.

        S3 lifecycle counts whole days. SeaweedFS applies the rule to objects
        written after it is set (as a TTL), so the periodic `delete_older_than`
        stays the mechanism for anything finer or older."""
        rules = [
            Rule(
                status=ENABLED,
                rule_filter=Filter(prefix=""),
                rule_id="arrayq-expiry",
                expiration=Expiration(days=days),
            ),
            # Parts of an upload whose writer was killed are otherwise kept (and
            # billed) for ever; the cleanup aborts them sooner where it runs.
            Rule(
                status=ENABLED,
                rule_filter=Filter(prefix=""),
                rule_id="arrayq-abort-incomplete-uploads",
                abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                    days_after_initiation=1
                ),
            ),
        ]
        with _translated(self.bucket):
            try:
                self._client.set_bucket_lifecycle(
                    bucket_name=self.bucket, config=LifecycleConfig(rules=rules)
                )
            except S3Error as exc:
                log.warning("%s refused a lifecycle rule: %s", self.endpoint, exc.code)
                return False
        return True

    def _list(self, prefix: str) -> Iterator[Object]:
        """Every object under the prefix; none when the bucket does not exist yet."""
        with suppress(NotFound), _translated(prefix):
            yield from self._client.list_objects(
                bucket_name=self.bucket, prefix=prefix, recursive=True
            )

    def _remove(self, names: Iterable[str | None]) -> int:
        requests = [DeleteObject(name=name) for name in names if name]
        with _translated(self.bucket):
            errors = list(
                self._client.remove_objects(bucket_name=self.bucket, delete_object_list=requests)
            )
        failed = [error for error in errors if error.code not in _MISSING_CODES]
        if failed:
            raise StorageUnavailable(f"could not delete {len(failed)} objects: {failed[0]}")
        return len(requests) - len(errors)


class S3Writer:
    """An object written piece by piece: one PUT when it is small, else a
    multipart upload sending each full part as it fills."""

    def __init__(self, client: Minio, bucket: str, key: str, length: int, content_type: str):
        self._client, self._bucket, self._key = client, bucket, key
        self._length = length
        self._headers = {"Content-Type": content_type}
        self._pending = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._parts: list[Part] = []

    def write(self, data: bytes | memoryview) -> None:
        self._pending += data
        self._written += memoryview(data).nbytes
        if self._written > self._length:
            raise ValueError(f"more than the declared {self._length} bytes")
        while len(self._pending) >= WRITER_PART_SIZE:
            self._send_part(bytes(self._pending[:WRITER_PART_SIZE]))
            del self._pending[:WRITER_PART_SIZE]

    def commit(self) -> None:
        if self._written != self._length:
            raise ValueError(f"wrote {self._written} bytes, expected {self._length}")
        with _translated(self._key):
            if self._upload_id is None:
                self._client._put_object(
                    self._bucket, self._key, bytes(self._pending), self._headers
                )
                return
            if self._pending:
                self._send_part(bytes(self._pending))
            self._client._complete_multipart_upload(
                self._bucket, self._key, self._upload_id, self._parts
            )

    def abort(self) -> None:
        upload_id, self._upload_id = self._upload_id, None
        self._pending.clear()
        if upload_id is not None:
            with suppress(NotFound, StorageUnavailable), _translated(self._key):
                self._client._abort_multipart_upload(self._bucket, self._key, upload_id)

    def _send_part(self, data: bytes) -> None:
        with _translated(self._key):
            if self._upload_id is None:
                self._upload_id = self._client._create_multipart_upload(
                    self._bucket, self._key, dict(self._headers)
                )
            number = len(self._parts) + 1
            etag = self._client._upload_part(
                self._bucket, self._key, data, None, self._upload_id, number
            )
        self._parts.append(Part(number, etag))


class _ChunkReader:
    """The `read(n)` file interface `put_object` wants, over an iterable of chunks.

    Holds at most one chunk beyond what it has handed out; raises ValueError when
    the chunks add up to anything but `length`, before the last part is sent."""

    def __init__(self, chunks: Iterable[bytes | memoryview], length: int) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self._remaining = length
        if length == 0:
            self._check_exhausted()

    def read(self, size: int = -1) -> bytes:
        size = self._remaining if size < 0 else min(size, self._remaining)
        pieces = []
        while size > 0:
            if not self._pending:
                self._pending = self._next_chunk()
            piece = self._pending[:size]
            self._pending = self._pending[len(piece) :]
            pieces.append(piece)
            size -= len(piece)
            self._remaining -= len(piece)
        if self._remaining == 0:
            self._check_exhausted()
        return b"".join(pieces)

    def _next_chunk(self) -> memoryview:
        for chunk in self._chunks:
            view = memoryview(chunk).cast("B")
            if view.nbytes:
                return view
        raise ValueError(f"chunks ended {self._remaining} bytes short of the declared length")

    def _check_exhausted(self) -> None:
        extra = len(self._pending) + sum(memoryview(chunk).nbytes for chunk in self._chunks)
        if extra:
            raise ValueError(f"chunks hold {extra} bytes more than the declared length")


class _ResponseStream(io.RawIOBase):
    """A GET response as a raw file; closing it returns the connection to the pool."""

    def __init__(self, response: urllib3.BaseHTTPResponse, key: str) -> None:
        self._response = response
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "WriteableBuffer") -> int:
        with _translated(self._key):
            return self._response.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


@contextmanager
def _translated(key: str) -> Iterator[None]:
    """minio and urllib3 errors as ours: missing -> NotFound, anything else the
    store does wrong or refuses -> StorageUnavailable."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING_CODES:
            raise NotFound(key) from None
        if exc.code in _FULL_CODES:
            raise StorageFull(f"object store is full: {exc.code}: {exc.message}") from exc
        raise StorageUnavailable(
            f"object store refused {key!r}: {exc.code}: {exc.message}"
        ) from exc
    except _UNREACHABLE as exc:
        raise StorageUnavailable(f"object store unreachable: {exc}") from exc


def _content_type(key: str) -> str:
    return _CONTENT_TYPES.get(key.rpartition(".")[2], "application/octet-stream")


def _pool_manager() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=_TIMEOUT,
        retries=_REQUEST_RETRIES,
        maxsize=16,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """`host:port`, or a URL whose scheme says whether it is TLS."""
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise ValueError(f"public endpoint must be host:port or http(s)://host:port: {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


def _endpoint(parts: SplitResult) -> str:
    """host:port as written in the URL; reading `.port` raises ValueError for a bad one."""
    _ = parts.port
    return parts.netloc.rpartition("@")[2]


def _bucket(path: str) -> str:
    bucket = path.strip("/")
    if not bucket or "/" in bucket:
        raise ValueError(f"s3:// storage URL needs exactly one bucket name as its path: {path!r}")
    return bucket


def _secure(query: str) -> bool:
    options = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    unknown = set(options) - {"secure"}
    if unknown:
        raise ValueError(f"unknown s3:// storage URL options: {sorted(unknown)}")
    value = options.get("secure", ["false"])[-1].lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"secure must be true or false, not {value!r}")
    return value in ("true", "1")
