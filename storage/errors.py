"""Our own exceptions. Other libraries' errors are translated into these inside
`storage/`, and `api/errors.py` maps them to HTTP statuses in one table."""


class ArrayqError(Exception):
    """Base class of every error arrayq raises on purpose."""

    type = "error"


class NotFound(ArrayqError):
    type = "not_found"


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
