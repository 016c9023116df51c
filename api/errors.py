"""Errors as JSON `{"error": {"type", "message"}}`, with one table from our
exceptions to HTTP statuses."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from arrayq.api.negotiation import NotAcceptable
from arrayq.api.responses import JSONBody
from arrayq.storage.errors import (
    ArrayqError,
    BodyTimeout,
    BrokerUnavailable,
    Conflict,
    Expired,
    IdempotencyMismatch,
    InvalidArray,
    InvalidCallback,
    InvalidInput,
    InvalidTtl,
    NotFound,
    StorageFull,
    StorageUnavailable,
    TooLarge,
    TooManyUploads,
)

log = logging.getLogger(__name__)


class Problem(ArrayqError):
    """An error of the API layer: its class names it (`type`); body fields
    (`job`, `details`, ...) and headers travel with it. Its status is in the table."""

    def __init__(
        self, message: str, *, headers: Mapping[str, str] | None = None, **fields: Any
    ) -> None:
        super().__init__(message)
        self.fields = fields
        if headers is not None:
            self.headers = dict(headers)

    def body_fields(self) -> dict[str, Any]:
        return self.fields


class BadJson(Problem):
    type = "invalid_json"


class JsonTooDeep(Problem):
    type = "json_too_deep"


class InvalidRange(Problem):
    type = "invalid_range"


class Unauthorized(Problem):
    type = "unauthorized"


class Forbidden(Problem):
    type = "forbidden"


class Missing(Problem):
    type = "not_found"


class NoSuchOp(Problem):
    type = "unknown_op"


class StateChanged(Problem):
    """The job changed state while the request was acting on it."""

    type = "conflict"


class ResultNotReady(Problem):
    type = "result_not_ready"


class UnsupportedMediaType(Problem):
    type = "unsupported_media_type"


class RangeNotSatisfiable(Problem):
    type = "range_not_satisfiable"


class ValidationFailed(Problem):
    type = "validation_error"


class InvalidParams(ValidationFailed):
    type = "invalid_params"


class UnknownOpRequested(Problem):
    type = "unknown_op"


class InvalidInputs(Problem):
    type = "invalid_inputs"


class InvalidCursor(Problem):
    type = "invalid_cursor"


class InvalidRenderOptions(Problem):
    type = "invalid_render_options"


class RateLimited(Problem):
    type = "rate_limited"


class CallbacksDisabled(Problem):
    """A callback was asked for, but ARRAYQ_WEBHOOK_SECRET is not set."""

    type = "callbacks_disabled"


STATUS_BY_ERROR: dict[type[ArrayqError], int] = {
    BadJson: 400,
    JsonTooDeep: 400,
    InvalidRange: 400,
    Unauthorized: 401,
    Forbidden: 403,
    Missing: 404,
    NoSuchOp: 404,
    StateChanged: 409,
    ResultNotReady: 409,
    UnsupportedMediaType: 415,
    RangeNotSatisfiable: 416,
    ValidationFailed: 422,
    UnknownOpRequested: 422,
    InvalidInputs: 422,
    InvalidCursor: 422,
    InvalidRenderOptions: 422,
    CallbacksDisabled: 422,
    RateLimited: 429,
    NotFound: 404,
    Expired: 410,
    NotAcceptable: 406,
    Conflict: 409,
    InvalidArray: 422,
    InvalidInput: 422,
    InvalidCallback: 422,
    InvalidTtl: 422,
    IdempotencyMismatch: 422,
    TooLarge: 413,
    BodyTimeout: 408,
    TooManyUploads: 429,
    StorageFull: 507,
    StorageUnavailable: 503,
    BrokerUnavailable: 503,
}

_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    410: "expired",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(
    status: int, type: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONBody:
    body = {"error": {"type": type, "message": message}, **extra}
    return JSONBody(body, status_code=status, headers=headers)


def status_of(exc: ArrayqError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def _arrayq_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, ArrayqError)
    status = status_of(exc)
    extra = exc.body_fields()
    return error_response(status, exc.type, str(exc), headers=dict(exc.headers), **extra)


async def _http_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    kind = _HTTP_TYPES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, kind, message, headers=exc.headers)


async def _request_validation_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, RequestValidationError)
    details = [_clean(err) for err in exc.errors()]
    return error_response(422, "validation_error", _summary(details), details=details)


def validation_failed(
    exc: ValidationError, kind: type[ValidationFailed] = ValidationFailed
) -> ValidationFailed:
    """A 422 carrying pydantic's error details."""
    details = [_clean(err) for err in exc.errors(include_url=False)]
    return kind(_summary(details), details=details)


async def _params_validation_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, ValidationError)
    return await _arrayq_error(request, validation_failed(exc))


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away mid-body: nobody reads an answer, and it is no server error."""
    log.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _unexpected_error(request: Request, exc: Exception) -> JSONBody:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "an unexpected error occurred")


def _clean(error: Any) -> dict[str, Any]:
    """Pydantic error details without the raw input or context, which may be
    large or not JSON-serializable."""
    return {
        "loc": list(error.get("loc", ())),
        "msg": error.get("msg", ""),
        "type": error.get("type"),
    }


def _summary(details: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(str(p) for p in d['loc']) or 'body'}: {d['msg']}" for d in details[:5]]
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArrayqError, _arrayq_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ValidationError, _params_validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
