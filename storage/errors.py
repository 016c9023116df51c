"""Our own exceptions. Other libraries' errors are translated into these inside
`storage/`, and `api/errors.py` maps them to HTTP statuses in one table."""

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any


class ArrayqError(Exception):
    """Base class of every error arrayq raises on purpose; `headers` go on its
    HTTP response."""

    type = "error"
    headers: Mapping[str, str] = MappingProxyType({})

    def body_fields(self) -> dict[str, Any]:
        """Fields the error response carries beside `error`."""
        return {}


class NotFound(ArrayqError):
    type = "not_found"


class Expired(NotFound):
    """The job existed and has been deleted at the end of its lifetime."""

    type = "expired"

    def __init__(self, job_id: str, expired_ts: float) -> None:
        self.expired_at = datetime.fromtimestamp(expired_ts, UTC).isoformat().replace("+00:00", "Z")
        super().__init__(f"job {job_id} expired at {self.expired_at}")

    def body_fields(self) -> dict[str, Any]:
        return {"expired_at": self.expired_at}


class Conflict(ArrayqError):
    """The job is not in a state that allows this."""

    type = "conflict"


class InvalidArray(ArrayqError):
    """An array (JSON or .npy) that cannot be accepted as given."""

    type = "invalid_array"


class UnsupportedDtype(InvalidArray):
    type = "unsupported_dtype"


class TooLarge(ArrayqError):
    """Over a size limit of the settings."""

    type = "too_large"


class StorageUnavailable(ArrayqError):
    """The object store cannot be reached."""

    type = "storage_unavailable"


class BrokerUnavailable(ArrayqError):
    """Redis (job records and broker) cannot be reached."""

    type = "redis_unavailable"


class IdempotencyMismatch(ArrayqError):
    """The Idempotency-Key was already used with a different request body."""

    type = "idempotency_mismatch"


class InvalidTtl(ArrayqError):
    """`ttl_seconds` outside 1 to ARRAYQ_RESULT_TTL_SECONDS."""

    type = "invalid_ttl"


class StorageFull(ArrayqError):
    """The object store has no space left for this write."""

    type = "storage_full"


class BodyTimeout(ArrayqError):
    """The client stopped sending its request body."""

    type = "body_timeout"


class TooManyUploads(ArrayqError):
    """The tenant has as many uploads in progress as it may."""

    type = "too_many_uploads"
    headers = MappingProxyType({"Retry-After": "1"})


class InvalidInput(ArrayqError):
    """An input names a job, output or slice that cannot be used."""

    type = "invalid_input"


class JobFailure(ArrayqError):
    """Why a job failed, found by the worker while running it: recorded in the
    job document's `error`, never an HTTP answer (so it has no status)."""


class InvalidCallback(ArrayqError):
    """A callback URL that webhooks may not be sent to."""

    type = "invalid_callback"
