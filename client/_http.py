"""What the sync and async clients share: settings, retry policy, error and
redirect decisions. No I/O here."""

import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from arrayq.client._errors import (
    ArrayqError,
    JobCancelled,
    JobFailed,
    ServiceUnavailable,
    Timeout,
    error_for,
)

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
SAFE_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
MAX_REDIRECTS = 5
# The server sends a keep-alive comment every 15 s; silence past this means trouble.
EVENTS_READ_TIMEOUT = 40.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


def base_url(url: str | None) -> str:
    return (url or os.environ.get("ARRAYQ_URL") or DEFAULT_URL).rstrip("/")


def auth_headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("ARRAYQ_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def new_idempotency_key() -> str:
    """A key for a submission that names none, so that retrying it cannot submit twice."""
    return f"arrayq-client-{uuid.uuid4()}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for connection errors and 503."""

    retries: int = 4
    base_seconds: float = 0.25
    max_seconds: float = 8.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        retry_after = _retry_after(response)
        if retry_after is not None:
            return min(retry_after, self.max_seconds)
        return random.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))

    def retry_error(self, attempt: int, exc: httpx.TransportError, safe: bool) -> bool:
        """Whether to try again after `exc`. A request that never reached the server
        can always be sent again; others only when repeating them is harmless."""
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        return attempt < self.retries and (never_sent or safe)

    def retry_response(self, attempt: int, response: httpx.Response, safe: bool) -> bool:
        return attempt < self.retries and safe and response.status_code == 503


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("retry-after", "") if response is not None else ""
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def is_safe(method: str, headers: dict[str, str] | None) -> bool:
    return method in SAFE_METHODS or "Idempotency-Key" in (headers or {})


def transport_error(exc: httpx.TransportError, url: str) -> ArrayqError:
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"no answer from {url} in time: {type(exc).__name__}")
    return ServiceUnavailable(f"cannot reach {url}: {type(exc).__name__}: {exc}")


def error_of(response: httpx.Response) -> ArrayqError:
    """The exception of an error answer whose body has been read."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    return error_for(response.status_code, body, response.text[:200])


def same_origin(url: httpx.URL, origin: httpx.URL) -> bool:
    return (url.scheme, url.host, _port(url)) == (origin.scheme, origin.host, _port(origin))


def _port(url: httpx.URL) -> int | None:
    return url.port or _DEFAULT_PORTS.get(url.scheme)


def redirect_url(response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise ArrayqError(f"redirect {response.status_code} without a Location")
    return response.url.join(location)


def check_final(document: dict[str, Any]) -> None:
    """Raise `JobFailed` or `JobCancelled` for a job that ended so."""
    if document["status"] == "failed":
        raise JobFailed(document)
    if document["status"] == "cancelled":
        raise JobCancelled(document)


def result_info(document: dict[str, Any]) -> dict[str, Any]:
    check_final(document)
    result = document.get("result")
    if document["status"] != "succeeded" or not result:
        raise ArrayqError(f"job {document['id']} is {document['status']}; it has no result yet")
    return result


def download_format(path: str) -> str:
    return "png" if path.lower().endswith(".png") else "npy"


def list_params(
    status: str | None, op: str | None, limit: int, cursor: str | None
) -> dict[str, str | int]:
    params: dict[str, str | int] = {"limit": limit}
    for name, value in (("status", status), ("op", op), ("cursor", cursor)):
        if value is not None:
            params[name] = value
    return params


def poll_interval(previous: float) -> float:
    return min(2.0, previous * 1.5)


@dataclass
class Deadline:
    """The end of a wait of `seconds` (None: no end)."""

    seconds: float | None
    _end: float | None = field(init=False)

    def __post_init__(self) -> None:
        self._end = None if self.seconds is None else time.monotonic() + self.seconds

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def expired(self, job_id: str) -> Timeout:
        return Timeout(f"job {job_id} did not finish within {self.seconds} s")

    def pause(self, interval: float, job_id: str) -> float:
        """How long to sleep before polling again; `Timeout` when none is left."""
        remaining = self.remaining()
        if remaining is None:
            return interval
        if remaining <= 0:
            raise self.expired(job_id)
        return min(interval, remaining)
