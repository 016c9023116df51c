"""arrayq: NumPy functions as an HTTP job service.

The base install is the client; the API and the workers come with the `server` extra.

>>> from arrayq import Client
>>> with Client("http://127.0.0.1:8000") as client:
...     client.submit("random", {"shape": [2, 2], "seed": 0}).result()
"""

from arrayq.client import (
    ArrayqError,
    AsyncClient,
    AsyncJob,
    AsyncOutput,
    BadRequest,
    Client,
    Expired,
    Job,
    JobCancelled,
    JobFailed,
    NotFound,
    Output,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
    ValidationError,
    verify_signature,
)

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
