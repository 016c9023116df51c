"""Server-sent events of one job, fed by the process's one subscription (`feed`).

Each event carries an `id` naming the state it shows; a client that reconnects
with `Last-Event-ID` is sent the current state only if it differs. When Redis
goes away the stream ends with an `error` event instead of being cut.
"""

import asyncio
from collections.abc import AsyncIterator

import orjson
import redis.asyncio

from arrayq.api.feed import Gone, JobFeed, Lost
from arrayq.storage.errors import ArrayqError, NotFound
from arrayq.storage.jobs import Job, read_job

KEEP_ALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 1000


def event_id(job: Job) -> str:
    """Names one state of the job: status, attempt and progress."""
    return f"{job.status.value}-{job.attempts}-{job.progress!r}"


def format_event(kind: str, job: Job) -> bytes:
    return (
        b"event: " + kind.encode() + b"\nid: " + event_id(job).encode()
        + b"\ndata: " + orjson.dumps(job.document()) + b"\n\n"
    )  # fmt: skip


def error_event(kind: str, message: str) -> bytes:
    data = orjson.dumps({"error": {"type": kind, "message": message}})
    return b"event: error\nretry: %d\ndata: %s\n\n" % (RECONNECT_MILLISECONDS, data)


def already_seen(job: Job, last_event_id: str | None) -> bool:
    """The client's last event showed this final state: nothing more to send."""
    return job.status.is_final and last_event_id == event_id(job)


async def job_events(
    feed: JobFeed, reader: redis.asyncio.Redis, job: Job, last_event_id: str | None = None
) -> AsyncIterator[bytes]:
    """One event per status or progress change; ends after the final status."""
    async with feed.follow(job.id) as updates:
        try:
            last = await read_job(reader, job.id, tenant=job.tenant)
        except NotFound:
            return
        except ArrayqError as exc:
            yield error_event(getattr(exc, "type", "error"), str(exc))
            return
        if event_id(last) != last_event_id:
            yield format_event("status", last)
        while not last.status.is_final:
            try:
                update = await asyncio.wait_for(updates.get(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if isinstance(update, Lost):
                yield error_event("redis_unavailable", update.reason)
                return
            if isinstance(update, Gone):
                return
            if update.status != last.status:
                yield format_event("status", update)
            elif update.progress != last.progress:
                yield format_event("progress", update)
            last = update
