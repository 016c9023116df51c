"""What the sync and async clients share: settings, retry policy, error and
redirect decisions. No I/O here."""

import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

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


# waiting in one request (`Prefer: wait=N`, RFC 7240)

MAX_WAIT_SECONDS = 60


def wait_seconds(remaining: float | None) -> int:
    """Whole seconds to ask the server to hold a request: what is left, at most 60."""
    if remaining is None:
        return MAX_WAIT_SECONDS
    return max(0, min(MAX_WAIT_SECONDS, int(remaining)))


def prefer_wait(seconds: int) -> dict[str, str]:
    return {"Prefer": f"wait={seconds}"} if seconds > 0 else {}


def held_timeout(timeout: float, wait: int) -> httpx.Timeout:
    """A read timeout that outlasts the time the server may hold the answer."""
    return httpx.Timeout(timeout, read=timeout + wait)


def answered_early(elapsed: float, wait: int) -> bool:
    """Whether a long poll came back unfinished well before its time: a server
    that does not hold requests, to be paced by sleeping instead."""
    return elapsed < wait - 0.5 or wait == 0


# the body of a job


def job_body(
    op: str,
    params: dict[str, Any],
    inputs: dict[str, Any],
    *,
    cache: bool | None = None,
    ttl_seconds: int | None = None,
    callback: str | dict[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {"op": op, "params": params, "inputs": inputs}
    if cache is not None:
        body["cache"] = cache
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    if callback is not None:
        body["callback"] = {"url": callback} if isinstance(callback, str) else callback
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def reference_of(value: Any) -> dict[str, str] | None:
    """The `{"job", "output"?, "slice"?}` input of a Job or an output of one, else None."""
    make = getattr(value, "_arrayq_reference", None)
    return make() if callable(make) else None


def reference(job_id: str, output: str | None, slice: str | None) -> dict[str, str]:
    ref = {"job": job_id}
    if output is not None:
        ref["output"] = output
    if slice is not None:
        ref["slice"] = slice
    return ref


def slice_text(key: Any) -> str:
    """NumPy basic indexing (ints and slices) as the text of `?slice=`: `0:10, ::2`."""
    parts = key if isinstance(key, tuple) else (key,)
    return ", ".join(_slice_part(part) for part in parts)


def _slice_part(part: Any) -> str:
    if isinstance(part, int) and not isinstance(part, bool):
        return str(part)
    if isinstance(part, slice) and all(
        v is None or (isinstance(v, int) and not isinstance(v, bool))
        for v in (part.start, part.stop, part.step)
    ):
        text = f"{_bound(part.start)}:{_bound(part.stop)}"
        return text if part.step is None else f"{text}:{part.step}"
    raise TypeError(f"only ints and slices of ints index a result, not {part!r}")


def _bound(value: int | None) -> str:
    return "" if value is None else str(value)


# results


def is_multi(info: dict[str, Any]) -> bool:
    return info.get("kind") == "outputs"


def output_info(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The result description of one output; a single-output job's output is `result`."""
    info = result_info(document)
    if not is_multi(info):
        if name != "result":
            raise ArrayqError(f"job {document['id']} has one output, 'result', not {name!r}")
        return info
    outputs = info.get("outputs") or {}
    if name not in outputs:
        known = ", ".join(sorted(outputs))
        raise ArrayqError(f"job {document['id']} has no output {name!r}; it has {known}")
    return outputs[name]


def array_params(info: dict[str, Any], slice: str | None) -> dict[str, str]:
    """JSON when the whole array fits inline (then any slice of it does), else .npy."""
    params = {"format": "json" if "json" in info.get("formats", ()) else "npy"}
    if slice is not None:
        params["slice"] = slice
    return params


def download_format(path: str, multi: bool = False) -> str:
    name = path.lower()
    if multi:
        if not name.endswith(".npz"):
            raise ValueError(
                "a job with several outputs downloads as one .npz file; give a path ending "
                "in .npz, or download one output: job.output(name).download(path)"
            )
        return "npz"
    if name.endswith(".npz"):
        raise ValueError("a job with one output downloads as .npy or .png, not .npz")
    return "png" if name.endswith(".png") else "npy"


PREVIEW_PIXELS = 256


def preview_params(info: dict[str, Any]) -> dict[str, str] | None:
    """The query of a small PNG preview (every k-th row and column), or None
    when the result has no PNG."""
    if "png" not in info.get("formats", ()):
        return None
    shape = info.get("shape") or []
    params = {"format": "png"}
    steps = [max(1, -(-size // PREVIEW_PIXELS)) for size in shape[:2]]
    if len(steps) == 2 and max(steps) > 1:
        params["slice"] = f"::{steps[0]}, ::{steps[1]}"
    return params


def png_params(cmap: str | None, vmin: float | None, vmax: float | None) -> dict[str, Any]:
    params = {"format": "png", "cmap": cmap, "vmin": vmin, "vmax": vmax}
    return {name: value for name, value in params.items() if value is not None}


def content_length(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def job_path(job_id: str, *rest: str) -> str:
    return "/".join(("/jobs", quote(job_id, safe=""), *rest))
