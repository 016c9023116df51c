"""The arrayq Python client.

>>> from arrayq import Client
>>> with Client("http://127.0.0.1:8000") as client:
...     client.submit("random", {"shape": [2, 2], "seed": 0}).result()
"""

from arrayq.client._async import AsyncClient, AsyncJob, AsyncOutput
from arrayq.client._client import Client, Job, Output
from arrayq.client._errors import (
    ArrayqError,
    BadRequest,
    Expired,
    JobCancelled,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
    ValidationError,
)
from arrayq.client._webhooks import verify_signature

__all__ = [
    "ArrayqError",
    "AsyncClient",
    "AsyncJob",
    "AsyncOutput",
    "BadRequest",
    "Client",
    "Expired",
    "Job",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "Output",
    "ServiceUnavailable",
    "Timeout",
    "Unauthorized",
    "ValidationError",
    "verify_signature",
]
