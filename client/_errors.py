"""The client's exceptions, and the one table from HTTP answers to them."""

from typing import Any


class ArrayqError(Exception):
    """Base class of every error the client raises.

    `status` is the HTTP status (None when no answer came), `type` and
    `message` the server's `{"error": {"type", "message"}}`, `body` its whole
    JSON body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str = "error",
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.body = body or {}

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} (HTTP {self.status} {self.type})"


class BadRequest(ArrayqError):
    """The server refused the request as it was (4xx)."""


class ValidationError(BadRequest):
    """The server found the op, its params or an input invalid (422)."""


class NotFound(ArrayqError):
    """No such job, upload or op for this API key (404)."""


class Expired(NotFound):
    """The job existed but is past its lifetime (410 `expired`); `expired_at` says when.

    A subclass of `NotFound`: code that handles a missing job handles this one too.
    """

    @property
    def expired_at(self) -> str | None:
        value = self.body.get("expired_at")
        return str(value) if value is not None else None


class Unauthorized(ArrayqError):
    """No API key, or a wrong one (401), or a bad or expired link (403)."""


class ServiceUnavailable(ArrayqError):
    """The service, or one of its dependencies, cannot be reached, even after retries."""


class Timeout(ArrayqError):
    """The job did not finish in time, or the server did not answer in time."""


class JobFailed(ArrayqError):
    """The job failed; `job` is its document, `error_type`/`error_message` the op's error."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        self.job = job
        self.error_type = str(error.get("type", "error"))
        self.error_message = str(error.get("message", ""))
        super().__init__(
            f"job {job.get('id')} failed: {self.error_type}: {self.error_message}",
            type=self.error_type,
        )


class JobCancelled(ArrayqError):
    """The job was cancelled; `job` is its document."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        super().__init__(f"job {job.get('id')} was cancelled", type="cancelled")


_BY_STATUS: dict[int, type[ArrayqError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    410: Expired,
    422: ValidationError,
    503: ServiceUnavailable,
}


def error_for(status: int, body: object, fallback_text: str = "") -> ArrayqError:
    """The exception of an error answer, from its status and JSON body."""
    document = body if isinstance(body, dict) else {}
    error = document.get("error") if isinstance(document.get("error"), dict) else {}
    kind = str(error.get("type", "http_error"))
    message = str(error.get("message") or fallback_text or f"HTTP {status}")
    cls = _BY_STATUS.get(status) or (BadRequest if 400 <= status < 500 else ArrayqError)
    return cls(message, status=status, type=kind, body=document)
