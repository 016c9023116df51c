"""One Redis pub/sub subscription per API process, fanned out to every request
that follows a job (event streams, `Prefer: wait`, long polls).

The feed subscribes once to the pattern of all job channels. For each batch of
announcements it reads the changed records that someone here follows, in one
pipelined round trip, and puts each record into the asyncio queue of every
follower of that job. A follower holds no thread and no Redis connection of
its own. When the subscription breaks (Redis went away) every follower gets
`LOST`; the feed subscribes again as soon as Redis is back.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from arrayq.storage import keys
from arrayq.storage.errors import ArrayqError, BrokerUnavailable
from arrayq.storage.jobs import Job, read_jobs

log = logging.getLogger(__name__)

BATCH = 256  # announcements read before one pipelined fetch of their records
RETRY_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)
READY_WAIT_SECONDS = 2.0
HEALTH_CHECK_SECONDS = 10
POLL_SECONDS = 5.0  # the longest read, so that health checks run on a quiet feed


@dataclass(frozen=True)
class Lost:
    """The feed lost Redis: what a follower knows may be stale from here on."""

    reason: str


@dataclass(frozen=True)
class Gone:
    """The job's record no longer exists (deleted or expired)."""


Update = Job | Gone | Lost


class JobFeed:
    def __init__(self, url: str, reader: redis.asyncio.Redis, *, name: str | None = None) -> None:
        # A client of its own: its one connection is the subscription.
        # No retries inside redis-py: a broken subscription is reported to the
        # followers at once, and `_run` subscribes again.
        self._client = redis.asyncio.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_SECONDS,
            retry=Retry(NoBackoff(), 0),
            client_name=name,
        )
        self._reader = reader  # records are read on the shared async client
        self._followers: dict[str, set[asyncio.Queue[Update]]] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="arrayq-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    @property
    def followers(self) -> int:
        return sum(len(queues) for queues in self._followers.values())

    @contextlib.asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[asyncio.Queue[Update]]:
        """A queue of the job's updates from now on. Read the record once after
        entering: a change between that read and the entry is not missed."""
        await self.wait_ready()
        queue: asyncio.Queue[Update] = asyncio.Queue()
        self._followers.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._followers.get(job_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._followers[job_id]

    @contextlib.asynccontextmanager
    async def following(self, job_id: str | None) -> AsyncIterator[asyncio.Queue[Update] | None]:
        """`follow(job_id)`, or nothing when `job_id` is None."""
        if job_id is None:
            yield None
            return
        async with self.follow(job_id) as updates:
            yield updates

    async def wait_ready(self) -> None:
        """Return once subscribed; `BrokerUnavailable` if that takes too long."""
        self.start()
        try:
            await asyncio.wait_for(self._ready.wait(), READY_WAIT_SECONDS)
        except TimeoutError:
            raise BrokerUnavailable("Redis is unreachable: no event subscription") from None

    # the subscription

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._subscribed_loop()
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, ArrayqError, OSError) as exc:
                self._ready.clear()
                self._broadcast(Lost(f"Redis is unreachable: {exc}"))
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("event subscription lost (%s); again in %.2f s", exc, delay)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _subscribed_loop(self) -> None:
        async with self._client.pubsub() as pubsub:
            await pubsub.psubscribe(keys.job_channel_pattern())
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None and message.get("type") == "psubscribe":
                    break
            self._ready.set()
            while True:
                changed = await self._next_batch(pubsub)
                if changed:
                    await self._deliver(changed)

    async def _next_batch(self, pubsub: redis.asyncio.client.PubSub) -> list[str]:
        """Ids of followed jobs announced since the last batch (blocks for one)."""
        message = await pubsub.get_message(timeout=POLL_SECONDS)
        changed: dict[str, None] = {}
        while message is not None and len(changed) < BATCH:
            if message.get("type") == "pmessage":
                job_id = keys.job_id_of_channel(message["channel"])
                if job_id in self._followers:
                    changed[job_id] = None
            message = await pubsub.get_message(timeout=0)
        return list(changed)

    async def _deliver(self, job_ids: list[str]) -> None:
        records = await read_jobs(self._reader, job_ids)
        for job_id, job in records.items():
            update: Update = job if job is not None else Gone()
            for queue in self._followers.get(job_id, ()):
                queue.put_nowait(update)

    def _broadcast(self, update: Update) -> None:
        for queues in self._followers.values():
            for queue in queues:
                queue.put_nowait(update)
