"""Listing, cancelling and deleting jobs."""

from typing import Any

from api.errors import ApiError
from api.services import Services
from storage import keys
from storage.jobs import JobStatus, JobStore


def list_page(
    jobs: JobStore,
    tenant: str,
    *,
    status: JobStatus | None,
    op: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    if cursor is not None and not cursor.isdigit():
        raise ApiError(422, "invalid_cursor", "cursor must be a next_cursor from an earlier page")
    before = int(cursor) if cursor is not None else None
    page, next_seq = jobs.list_jobs(tenant, limit=limit, before_seq=before, status=status, op=op)
    return {
        "items": [job.document() for job in page],
        "next_cursor": str(next_seq) if next_seq is not None else None,
    }


def cancel_or_delete(services: Services, job_id: str, tenant: str) -> None:
    """Cancel a queued or running job; delete a finished one with its objects."""
    job = services.jobs.get(job_id, tenant=tenant)
    if not job.status.is_final and services.jobs.cancel(job.id):
        return
    job = services.jobs.get(job_id, tenant=tenant)  # it may have finished meanwhile
    if not job.status.is_final:
        raise ApiError(
            409, "conflict", f"job {job.id} changed state; try again", job=job.document()
        )
    services.jobs.delete(job.id)
    services.store.delete_prefix(keys.inputs_prefix(job.tenant, job.id))
    for fmt in ("npy", "png"):
        services.store.delete(keys.result_object(job.tenant, job.id, fmt))
