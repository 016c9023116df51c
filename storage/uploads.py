"""Records of uploaded arrays: which tenant owns them and where they are stored."""

from dataclasses import dataclass

import orjson
import redis

from arrayq.storage import keys
from arrayq.storage.errors import NotFound
from arrayq.storage.redis_client import translate_redis_errors


@dataclass(frozen=True)
class Upload:
    id: str
    tenant: str
    key: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    # Content digest (`storage.digests`), computed while the upload streamed in;
    # None for uploads recorded before digests existed.
    digest: str | None = None

    def document(self) -> dict[str, object]:
        return {
            "id": self.id,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
        }


def save_upload(client: redis.Redis, upload: Upload, *, ttl_seconds: int) -> None:
    fields = {
        "tenant": upload.tenant,
        "key": upload.key,
        "dtype": upload.dtype,
        "shape": orjson.dumps(list(upload.shape)).decode(),
        "nbytes": str(upload.nbytes),
        "digest": upload.digest or "",
    }
    with translate_redis_errors():
        client.hset(keys.upload_key(upload.id), mapping=fields)
        client.expire(keys.upload_key(upload.id), ttl_seconds)


def get_upload(client: redis.Redis, upload_id: str, *, tenant: str) -> Upload:
    """The upload, or `NotFound` (also for another tenant's)."""
    if not keys.is_valid_id(upload_id):
        raise NotFound(f"no upload {upload_id!r}")
    with translate_redis_errors():
        fields = client.hgetall(keys.upload_key(upload_id))
    if not fields or fields.get("tenant") != tenant:
        raise NotFound(f"no upload {upload_id!r}")
    return Upload(
        id=upload_id,
        tenant=tenant,
        key=fields["key"],
        dtype=fields["dtype"],
        shape=tuple(orjson.loads(fields["shape"])),
        nbytes=int(fields["nbytes"]),
        digest=fields.get("digest") or None,
    )
