"""The signature of a webhook delivery: `ArrayQ-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<body>">`, the scheme Stripe and GitHub receivers already verify.

The client package keeps its own copy of the check (`arrayq.client._webhooks`), since
it never imports the server; a unit test signs here and verifies there.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "ArrayQ-Signature"


def signature(secret: str | bytes, body: bytes, signed_at: int) -> str:
    """The hex HMAC-SHA256 of `<signed_at>.<body>` keyed with `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, now: float | None = None) -> str:
    """The value of `ArrayQ-Signature` for `body`, signed now."""
    signed_at = int(time.time() if now is None else now)
    return f"t={signed_at},v1={signature(secret, body, signed_at)}"
