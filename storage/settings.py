"""Typed settings, read from `ARRAYQ_*` environment variables.

Never built at import: call `get_settings()` (cached) or construct `Settings(...)`
directly in tests.
"""

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARRAYQ_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    storage_url: str = "file://./.arrayq/data"
    s3_public_endpoint: str | None = None
    s3_region: str = "us-east-1"
    api_keys: str | None = None
    inline_max_bytes: int = Field(default=1_048_576, ge=0)
    # Input arrays up to this size travel in the job record, not the object store.
    inline_input_max_bytes: int = Field(default=65_536, ge=0, le=1_048_576)
    max_input_bytes: int = Field(default=268_435_456, gt=0)
    max_result_bytes: int = Field(default=1_073_741_824, gt=0)
    url_ttl_seconds: int = Field(default=900, gt=0)
    result_ttl_seconds: int = Field(default=604_800, gt=0)
    ops_modules: str | None = None
    # Most jobs of one tenant on the broker queue or running (0 = no limit).
    tenant_max_active: int = Field(default=0, ge=0)
    # An expired job answers 410 (not 404) for this long after it expired.
    tombstone_ttl_seconds: int = Field(default=2_592_000, gt=0)
    # Secret for the HMAC of local download links; when unset, one is generated
    # once and kept in Redis so that every API replica signs alike.
    signing_key: str | None = None
    # With nginx in front: local `.npy` downloads are answered with an empty body and
    # `X-Accel-Redirect: <prefix><object key>`, and nginx sends the file itself from
    # an `internal` location with this prefix aliased to the storage folder.
    accel_redirect_prefix: str | None = None
    # A running job writes a heartbeat this often; a job whose heartbeat is older
    # than `heartbeat_timeout_seconds` is considered orphaned and is re-queued.
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # The broker hands an unacknowledged message to another worker after this
    # long (its worker died between taking a message and claiming the job); a
    # copy that finds its job alive elsewhere steps aside.
    visibility_timeout_seconds: float = Field(default=30.0, gt=0)
    # A pool process is replaced after a job that took it past this (0 = never).
    worker_max_memory_mb: int = Field(default=2048, ge=0)
    # Global op time limits; an op may set its own.
    soft_time_limit_seconds: float = Field(default=3600.0, gt=0)
    hard_time_limit_seconds: float = Field(default=3660.0, gt=0)
    cleanup_interval_seconds: float = Field(default=300.0, gt=0)
    # With less free space than this in a local storage folder, /readyz reports
    # storage_full (writes that find no space answer 507 whatever this says).
    storage_min_free_bytes: int = Field(default=67_108_864, ge=0)
    # A request body that sends nothing for this long is refused (408), so a
    # stalled client holds no upload slot, file or memory for ever.
    body_idle_timeout_seconds: float = Field(default=30.0, gt=0)
    # On SIGTERM a worker lets its running jobs finish for at most this long, then
    # hands them back to the queue (another worker starts them at once) and exits.
    worker_shutdown_seconds: float = Field(default=50.0, ge=0)
    # Uploads of one tenant in progress at once in one API process (429 beyond).
    tenant_max_uploads: int = Field(default=32, ge=1)
    # Requests per minute per tenant, shared by all API replicas through Redis;
    # 0 turns the limit off. A tenant may spend `rate_limit_burst` requests at
    # once (0 = the per-minute number).
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_burst: int = Field(default=0, ge=0)
    # Bounds of a JSON request body once parsed: nesting levels and values.
    max_json_depth: int = Field(default=64, ge=8, le=200)
    max_json_values: int = Field(default=33_554_432, gt=0)
    # HMAC key of webhook deliveries; unset, a job with a `callback` is refused.
    webhook_secret: str | None = None
    # Hosts or CIDRs that callbacks may reach although they are internal addresses.
    webhook_allow_hosts: str | None = None
    webhook_max_attempts: int = Field(default=8, ge=1)
    # The first pause between tries of one delivery; it doubles each time.
    webhook_retry_seconds: float = Field(default=1.0, gt=0)

    @field_validator(
        "api_keys",
        "ops_modules",
        "s3_public_endpoint",
        "signing_key",
        "accel_redirect_prefix",
        "webhook_secret",
        "webhook_allow_hosts",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("accel_redirect_prefix")
    @classmethod
    def _absolute_folder(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("/") and value.endswith("/")):
            raise ValueError("ARRAYQ_ACCEL_REDIRECT_PREFIX must start and end with /")
        return value

    def tenants_by_key(self) -> dict[str, str]:
        """`key1:tenantA,key2:tenantB` as a mapping; empty when the API is open."""
        if not self.api_keys:
            return {}
        pairs = (item.strip() for item in self.api_keys.split(","))
        mapping = {}
        for pair in filter(None, pairs):
            key, sep, tenant = pair.partition(":")
            if not sep or not key or not tenant:
                raise ValueError("ARRAYQ_API_KEYS must look like key1:tenantA,key2:tenantB")
            mapping[key] = tenant
        return mapping

    def ops_module_names(self) -> list[str]:
        if not self.ops_modules:
            return []
        return [name.strip() for name in self.ops_modules.split(",") if name.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
