"""HMAC-signed, expiring download links for results on local storage.

The signature is the credential: whoever holds the link may download until it
expires, without an API key.
"""

import hashlib
import hmac
import time


def subject(job_id: str, output: str | None = None) -> str:
    """What a link is for: a job's only result, or one named output."""
    return job_id if output is None else f"{job_id}/{output}"


def sign(secret: bytes, job_id: str, expires: int) -> str:
    """`job_id` is a `subject()`."""
    message = f"{job_id}:{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(
    secret: bytes, job_id: str, expires: int, signature: str, now: float | None = None
) -> bool:
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(sign(secret, job_id, expires), signature)
