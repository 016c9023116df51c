"""Checking that a webhook delivery came from the service: the receiver's side
of `ArrayQ-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "arrayq-signature"
DEFAULT_TOLERANCE_SECONDS = 300


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `body` was signed with `secret` (`ARRAYQ_WEBHOOK_SECRET`) less
    than `tolerance` seconds ago (an old delivery replayed is refused).
    `headers` is the request's headers, any casing; `body` the raw bytes.

    >>> verify_signature(secret, request.headers, request.body)
    True
    """
    fields = _fields(_header(headers, SIGNATURE_HEADER) or "")
    try:
        signed_at = int(fields.get("t", [""])[0])
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - signed_at) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    key = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.new(key, str(signed_at).encode() + b"." + raw, hashlib.sha256).hexdigest()
    # Every v1 is compared: a receiver may be sent several while a secret is rotated.
    matches = [hmac.compare_digest(expected, given) for given in fields.get("v1", [])]
    return any(matches)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, found in headers.items():
        if key.lower() == name:
            return found
    return None


def _fields(header: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    return fields
