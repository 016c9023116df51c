from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from arrayq.api import jobs as job_actions
from arrayq.api.body import read_json
from arrayq.api.deps import BackendsDep, JobsDep, TenantDep
from arrayq.api.errors import ValidationFailed
from arrayq.api.events import already_seen, job_events
from arrayq.api.responses import JSONBody
from arrayq.api.waiting import preferred_wait, until_final, wait_final
from arrayq.storage.jobs import JobStatus, read_job

router = APIRouter(tags=["jobs"])

_JOB_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}},
    }
}


@router.post(
    "/jobs",
    status_code=202,
    summary="Submit a job",
    openapi_extra=_JOB_REQUEST_BODY,
    responses={
        200: {"description": "Replay of an Idempotency-Key: the first job"},
        201: {"description": "The job is final already: a cache hit, or done within the wait"},
    },
)
async def create_job(
    request: Request,
    backends: BackendsDep,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    prefer: Annotated[str | None, Header(max_length=1000)] = None,
) -> JSONBody:
    settings = backends.settings
    body = await read_json(
        request,
        settings.max_input_bytes,
        max_depth=settings.max_json_depth,
        max_values=settings.max_json_values,
        idle_seconds=settings.body_idle_timeout_seconds,
    )
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    wait = preferred_wait(prefer)
    job_id = job_actions.new_job_id()
    # With a wait, the new job is followed from before it exists: no change of
    # it can be missed, and no read is needed after it is recorded.
    async with backends.feed.following(job_id if wait is not None else None) as updates:
        submitted = await run_in_threadpool(
            job_actions.submit_job, backends, tenant, body, idempotency_key, job_id
        )
        job = submitted.job
        if wait is not None and updates is not None and job.id == job_id:
            job = await until_final(updates, job, wait)
        elif wait is not None:  # an Idempotency-Key replay: another job
            job = await wait_final(backends.feed, backends.aredis, job, wait)
    headers = {"Location": f"/jobs/{job.id}"}
    status = 200
    if submitted.created:
        status = 201 if job.status.is_final else 202
    if status == 201 and wait is not None:
        headers["Preference-Applied"] = f"wait={wait}"
    return JSONBody(job.document(), status_code=status, headers=headers)


@router.get("/jobs", summary="This tenant's jobs, newest first")
def list_jobs(
    jobs: JobsDep,
    tenant: TenantDep,
    status: JobStatus | None = None,
    op: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    return job_actions.list_page(jobs, tenant, status=status, op=op, limit=limit, cursor=cursor)


@router.get("/jobs/{job_id}", summary="One job; with `Prefer: wait=N` a long poll")
async def get_job(
    job_id: str,
    backends: BackendsDep,
    tenant: TenantDep,
    prefer: Annotated[str | None, Header(max_length=1000)] = None,
) -> JSONBody:
    job = await read_job(backends.aredis, job_id, tenant=tenant)
    wait = preferred_wait(prefer)
    headers = {}
    if wait is not None:
        job = await wait_final(backends.feed, backends.aredis, job, wait)
        headers["Preference-Applied"] = f"wait={wait}"
    return JSONBody(job.document(), headers=headers)


@router.delete("/jobs/{job_id}", status_code=204, summary="Cancel a job, or delete a finished one")
def delete_job(job_id: str, backends: BackendsDep, tenant: TenantDep) -> Response:
    job_actions.cancel_or_delete(backends, job_id, tenant)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/events",
    summary="Server-sent events of status and progress changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_event_stream(
    job_id: str,
    backends: BackendsDep,
    tenant: TenantDep,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    job = await read_job(backends.aredis, job_id, tenant=tenant)
    if already_seen(job, last_event_id):
        return Response(status_code=204)  # tells an EventSource to stop reconnecting
    await backends.feed.wait_ready()
    return StreamingResponse(
        job_events(backends.feed, backends.aredis, job, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
