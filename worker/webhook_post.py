"""One try of a webhook delivery, and what follows from its answer.

The URL's host is resolved and checked again at each try, and the request goes to
the very address that was checked (the Host header and TLS name stay the host's),
so a name that resolves to an internal address by now reaches nothing. No proxy
from the environment is used, no redirect is followed and the answer's body is
not read.
"""

import ssl
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import httpx

from arrayq.storage.callback_address import (
    AllowList,
    IPAddress,
    Target,
    Unresolvable,
    checked_addresses,
    parse_url,
)
from arrayq.storage.callback_address import resolve as resolve_host
from arrayq.storage.errors import InvalidCallback
from arrayq.storage.webhook_signature import SIGNATURE_HEADER, signature_header

TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 3600.0
USER_AGENT = "arrayq-webhooks/1"
Step = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True)
class Answer:
    """How one try ended: the receiver's status code, or why there is none."""

    status_code: int | None
    error: str | None = None
    refused: bool = False  # the address may not be reached: never tried again


def next_step(answer: Answer, attempts: int, max_attempts: int) -> Step:
    """2xx delivers; no answer (connection error, timeout), 429 and 5xx are tried
    again while tries are left; anything else ends the delivery as failed."""
    code = answer.status_code
    if code is not None and 200 <= code < 300:
        return "delivered"
    retryable = not answer.refused and (code is None or code == 429 or code >= 500)
    return "retry" if retryable and attempts < max_attempts else "failed"


def backoff_seconds(attempts: int, first: float) -> float:
    """The pause after the `attempts`-th try: `first`, doubling each time."""
    return min(first * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)


def delivery_headers(
    secret: str, body: bytes, event: str, delivery_id: str, now: float | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "ArrayQ-Event": event,
        "ArrayQ-Delivery": delivery_id,
        SIGNATURE_HEADER: signature_header(secret, body, now),
    }


def post(url: str, body: bytes, headers: dict[str, str], allow: AllowList) -> Answer:
    """POST `body` to `url` once, at an address checked just now (the next
    checked one when an address cannot be connected to)."""
    try:
        target = parse_url(url)
        addresses = checked_addresses(target, resolve_host(target), allow)
    except InvalidCallback as exc:
        return Answer(None, str(exc), refused=True)
    except Unresolvable as exc:
        return Answer(None, str(exc))
    answer = Answer(None, "no address")
    for address in addresses:
        try:
            return Answer(_post_to(target, address, body, headers))
        except httpx.ConnectError as exc:
            answer = Answer(None, f"ConnectError: {exc}")
        except httpx.HTTPError as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}")
    return answer


def _post_to(target: Target, address: IPAddress, body: bytes, headers: dict[str, str]) -> int:
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with (
        httpx.Client(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False, verify=_tls_context()
        ) as client,
        client.stream(
            "POST",
            target.url_for(address),
            content=body,
            headers={**headers, "Host": target.host_header},
            extensions=extensions,
        ) as response,
    ):
        return response.status_code


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One context for every try: building one loads the CA bundle."""
    return httpx.create_ssl_context()
