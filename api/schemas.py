"""The request bodies of the job routes, as pydantic models (validated and documented)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ArrayInput(BaseModel):
    """An array in JSON: nested `data` lists or raw little-endian `base64` bytes."""

    model_config = ConfigDict(extra="forbid")
    dtype: str
    shape: list[int]
    data: Any = None
    base64: str | None = None


class UploadRef(BaseModel):
    """An array uploaded earlier through `POST /uploads`."""

    model_config = ConfigDict(extra="forbid")
    upload: str


class JobRef(BaseModel):
    """Another job's result: its only output, or the named one; optionally sliced
    (the syntax of `?slice=`). It need not have finished: the job waits for it."""

    model_config = ConfigDict(extra="forbid")
    job: str = Field(max_length=64)
    output: str | None = Field(default=None, max_length=200)
    slice: str | None = Field(default=None, max_length=500)


class Callback(BaseModel):
    """Where the job is POSTed at each of the events (a webhook)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="http(s) URL of the receiver")
    events: list[Literal["running", "succeeded", "failed", "cancelled"]] = Field(
        default=["succeeded", "failed", "cancelled"], min_length=1, max_length=4
    )


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, ArrayInput | UploadRef | JobRef] = Field(default_factory=dict)
    ttl_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Seconds the job and its results are kept after it becomes final "
        "(1 to ARRAYQ_RESULT_TTL_SECONDS, which is also the default)",
    )
    cache: bool = Field(
        default=True, description="false: compute again even if a cached result exists"
    )
    callback: Callback | None = Field(
        default=None, description="POST the job document to this URL at each event"
    )
