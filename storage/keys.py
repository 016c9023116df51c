"""Every Redis key and object key arrayq uses, built from ids only.

User text never reaches a key: ids are validated by `is_valid_id` before use.
"""

import re
import uuid

PREFIX = "arrayq"
_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    return uuid.uuid4().hex


def is_valid_id(value: str) -> bool:
    return bool(_ID_PATTERN.fullmatch(value))


# Redis keys


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def job_channel(job_id: str) -> str:
    """Pub/sub channel that announces each change of one job."""
    return f"{PREFIX}:events:{job_id}"


def job_channel_pattern() -> str:
    """The pattern of every job's channel: one subscription per API process."""
    return job_channel("*")


def job_id_of_channel(channel: str) -> str:
    return channel.rpartition(":")[2]


def tenant_jobs_key(tenant: str) -> str:
    """Sorted set of a tenant's job ids scored by submission sequence."""
    return f"{PREFIX}:tenant:{tenant}:jobs"


def tenant_status_key(tenant: str, status: str) -> str:
    """Sorted set of a tenant's job ids in one status, scored by submission sequence."""
    return f"{PREFIX}:tenant:{tenant}:status:{status}"


def tenant_status_key_lua(tenant_expr: str, status_expr: str) -> str:
    """`tenant_status_key` as a Lua expression, for scripts that learn the tenant
    from the record itself."""
    return f"'{PREFIX}:tenant:' .. {tenant_expr} .. ':status:' .. {status_expr}"


def tenant_active_key(tenant: str) -> str:
    """Set of a tenant's job ids on the broker queue or running (fair share)."""
    return f"{PREFIX}:tenant:{tenant}:active"


def tenant_active_key_lua(tenant_expr: str) -> str:
    return f"'{PREFIX}:tenant:' .. {tenant_expr} .. ':active'"


def tenant_backlog_key(tenant: str) -> str:
    """Sorted set of a tenant's job ids waiting for room, by submission sequence."""
    return f"{PREFIX}:tenant:{tenant}:backlog"


def tenant_backlog_key_lua(tenant_expr: str) -> str:
    return f"'{PREFIX}:tenant:' .. {tenant_expr} .. ':backlog'"


def fair_tenants_key() -> str:
    """Set of the tenants that have had jobs under a fair-share limit."""
    return f"{PREFIX}:fair:tenants"


def tenant_index_pattern() -> str:
    """SCAN pattern of every tenant's listing indexes (all jobs, and by status)."""
    return f"{PREFIX}:tenant:*"


def is_tenant_index(key: str) -> bool:
    return key.endswith(":jobs") or ":status:" in key


def tenant_sequence_key(tenant: str) -> str:
    """Counter of a tenant's submissions: its list order and cursors, which so
    count nothing of other tenants."""
    return f"{PREFIX}:tenant:{tenant}:seq"


def running_key() -> str:
    """Sorted set of running job ids scored by their last heartbeat."""
    return f"{PREFIX}:running"


def queued_key() -> str:
    """Sorted set of queued job ids scored by when they were (re-)queued."""
    return f"{PREFIX}:queued"


def tombstone_key(job_id: str) -> str:
    """What is left of an expired job: `<expired at, unix>|<tenant>`, so that it
    answers 410 to its tenant for a while."""
    return f"{PREFIX}:tomb:{job_id}"


def expiring_key() -> str:
    """Sorted set of `<job id>|<tenant>` of final jobs, scored by when they expire;
    the workers delete their objects once that has passed."""
    return f"{PREFIX}:expiring"


def job_waits_key(job_id: str) -> str:
    """Set of the job ids a waiting job still waits for."""
    return f"{PREFIX}:waits:{job_id}"


def job_dependents_key(job_id: str) -> str:
    """Set of the waiting jobs that reference this job."""
    return f"{PREFIX}:dependents:{job_id}"


def needed_key() -> str:
    """Hash of job id -> how many jobs that reference it have not started yet."""
    return f"{PREFIX}:needed"


def waiting_key() -> str:
    """Sorted set of jobs waiting for others, scored by when they started waiting."""
    return f"{PREFIX}:waiting"


def idempotency_key(tenant: str, digest: str) -> str:
    return f"{PREFIX}:idem:{tenant}:{digest}"


def cache_key(tenant: str, digest: str) -> str:
    """The result cache entry of one computation (digest from `storage.digests`):
    the id of the job that computed it. Per tenant, so no tenant hits another's."""
    return f"{PREFIX}:cache:{tenant_prefix(tenant)}:{digest}"


def upload_key(upload_id: str) -> str:
    return f"{PREFIX}:upload:{upload_id}"


def stats_submitted_key() -> str:
    """Hash of jobs submitted, by op."""
    return f"{PREFIX}:stats:submitted"


def stats_finished_key() -> str:
    """Hash of jobs finished, by `op|status`."""
    return f"{PREFIX}:stats:finished"


def stats_cache_hits_key() -> str:
    """Hash of jobs served from the result cache, by op."""
    return f"{PREFIX}:stats:cache_hits"


def stats_duration_key() -> str:
    """Hash of run-time histogram fields: `op|<bucket bound>`, `op|count`, `op|sum`."""
    return f"{PREFIX}:stats:duration"


def stats_webhooks_key() -> str:
    """Hash of webhook deliveries that ended, by `event|outcome` (delivered, failed)."""
    return f"{PREFIX}:stats:webhooks"


def signing_secret_key() -> str:
    return f"{PREFIX}:signing-secret"


def rate_limit_key(tenant: str, window: int) -> str:
    return f"{PREFIX}:rate:{tenant}:{window}"


# Object keys


def tenant_prefix(tenant: str) -> str:
    # Tenants come from settings, not requests; hex-encode anyway so that no
    # character of a tenant name can shape a path.
    return f"t-{tenant.encode().hex()}"


def input_object(tenant: str, job_id: str, name_index: int) -> str:
    return f"inputs/{tenant_prefix(tenant)}/{job_id}/{name_index}.npy"


def inputs_prefix(tenant: str, job_id: str) -> str:
    return f"inputs/{tenant_prefix(tenant)}/{job_id}/"


def job_object_prefixes(tenant: str, job_id: str) -> list[str]:
    """Every object of one job (inputs and results) starts with one of these; job
    ids have a fixed length, so no other job's key does."""
    return [inputs_prefix(tenant, job_id), f"results/{tenant_prefix(tenant)}/{job_id}"]


def legacy_result_object(tenant: str, job_id: str, fmt: str = "npy") -> str:
    """Where results were kept before each run wrote under its own key (still read)."""
    return f"results/{tenant_prefix(tenant)}/{job_id}.{fmt}"


def results_prefix(tenant: str, job_id: str) -> str:
    """Every run's result objects of one job."""
    return f"results/{tenant_prefix(tenant)}/{job_id}/"


def run_prefix(tenant: str, job_id: str, run_id: str) -> str:
    """The result objects one run wrote; only the succeeding run's are kept."""
    return f"{results_prefix(tenant, job_id)}{run_id}/"


def output_object(tenant: str, job_id: str, run_id: str, output: str, fmt: str = "npy") -> str:
    """One output of one run. Output names come from the op registry, which
    allows identifiers only (`storage.results.check_output_names`)."""
    return f"{run_prefix(tenant, job_id, run_id)}{output}.{fmt}"


def upload_object(tenant: str, upload_id: str) -> str:
    return f"uploads/{tenant_prefix(tenant)}/{upload_id}.npy"


def webhooks_due_key() -> str:
    """Sorted set of webhook delivery ids, scored by when each is due (a claimed
    one by when its worker's lease ends)."""
    return f"{PREFIX}:webhooks:due"


def webhook_key(delivery_id: str) -> str:
    """Hash of one webhook delivery: job, event, URL, tries, the job as it was."""
    return f"{PREFIX}:webhook:{delivery_id}"
