"""`Prefer: wait=N` (RFC 7240): answering once a job is final, or after N seconds.

A waiting request follows the job through the process's one subscription
(`feed`): it holds no thread and no Redis connection of its own.
"""

import asyncio

import redis.asyncio

from arrayq.api.feed import Gone, JobFeed, Lost, Update
from arrayq.storage.errors import NotFound
from arrayq.storage.jobs import Job, read_job

MAX_WAIT_SECONDS = 60


def preferred_wait(header: str | None) -> int | None:
    """The `wait` preference in seconds (at most 60), or None. Preferences that
    are not understood, or a malformed value, are ignored, as RFC 7240 asks."""
    if not header:
        return None
    for preference in header.split(","):
        name, _, value = preference.split(";")[0].strip().partition("=")
        if name.strip().lower() == "wait":
            value = value.strip().strip('"')
            if not (value.isascii() and value.isdigit()):
                return None
            return min(int(value), MAX_WAIT_SECONDS)
    return None


async def wait_final(feed: JobFeed, reader: redis.asyncio.Redis, job: Job, seconds: float) -> Job:
    """The job once final, or as it is when `seconds` have passed (or when the
    subscription broke: the caller answers with what is known)."""
    if job.status.is_final or seconds <= 0:
        return job
    async with feed.follow(job.id) as updates:
        job = await read_job(reader, job.id, tenant=job.tenant)
        return await until_final(updates, job, seconds)


async def until_final(updates: asyncio.Queue[Update], job: Job, seconds: float) -> Job:
    """`job` brought up to date from a queue followed since before it was read
    (or created), until it is final or `seconds` have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not job.status.is_final:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            update = await asyncio.wait_for(updates.get(), remaining)
        except TimeoutError:
            break
        if isinstance(update, Lost):
            break
        if isinstance(update, Gone):
            raise NotFound(f"no job {job.id!r}")
        job = update
    return job
