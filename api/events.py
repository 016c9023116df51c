"""Server-sent events of one job, fed by the job's Redis pub/sub channel (no polling)."""

from collections.abc import AsyncIterator

import orjson
from starlette.concurrency import run_in_threadpool

from arrayq.api.backends import Backends
from arrayq.storage import keys
from arrayq.storage.errors import NotFound
from arrayq.storage.jobs import Job

KEEP_ALIVE_SECONDS = 15.0


def format_event(kind: str, job: Job) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(job.document()) + b"\n\n"


async def job_events(backends: Backends, job: Job) -> AsyncIterator[bytes]:
    """One event per status or progress change; ends after the final status."""
    pubsub = backends.aredis.pubsub()
    await pubsub.subscribe(keys.job_channel(job.id))
    try:
        # Read again after subscribing so that no change falls between the two.
        last = await run_in_threadpool(backends.jobs.get, job.id)
        yield format_event("status", last)
        while not last.status.is_final:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=KEEP_ALIVE_SECONDS
            )
            if message is None:
                yield b": keep-alive\n\n"
                continue
            try:
                current = await run_in_threadpool(backends.jobs.get, job.id)
            except NotFound:
                return
            if current.status != last.status:
                yield format_event("status", current)
            elif current.progress != last.progress:
                yield format_event("progress", current)
            last = current
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
