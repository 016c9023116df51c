"""The arrayq Python client.

>>> from client import Client
>>> with Client("http://127.0.0.1:8000") as client:
...     client.submit("random", {"shape": [2, 2], "seed": 0}).result()
"""

from arrayq.client._async import AsyncClient, AsyncJob
from arrayq.client._client import Client, Job
from arrayq.client._errors import (
    ArrayqError,
    BadRequest,
    JobCancelled,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
    ValidationError,
)

__all__ = [
    "ArrayqError",
    "AsyncClient",
    "AsyncJob",
    "BadRequest",
    "Client",
    "Job",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "ServiceUnavailable",
    "Timeout",
    "Unauthorized",
    "ValidationError",
]
