"""The arq worker: `arq bench.peer_apps.arq_worker.WorkerSettings` with
`BENCH_PEER_REDIS_URL` set. Results are pickled into Redis (arq's default)."""

import os
from typing import Any, ClassVar

import numpy as np
from arq.connections import RedisSettings

from bench.peer_apps import jobs

# arq's workers look for new jobs every `poll_delay` (0.5 s by default, which alone
# would add 250 ms to a job's mean latency); here they poll as often as every client
# of this benchmark does.
POLL_SECONDS = 0.002


async def noop(ctx: dict[str, Any]) -> None:
    jobs.noop()


async def floats(ctx: dict[str, Any], n: int = jobs.FLOATS) -> np.ndarray:
    return jobs.floats(n)


async def echo(ctx: dict[str, Any], x: np.ndarray) -> np.ndarray:
    return jobs.echo(x)


async def nan32(ctx: dict[str, Any]) -> np.ndarray:
    return jobs.nan32()


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(
        os.environ.get("BENCH_PEER_REDIS_URL", "redis://127.0.0.1:6379/2")
    )


class WorkerSettings:
    functions: ClassVar = [noop, floats, echo, nan32]
    redis_settings = redis_settings()
    poll_delay = POLL_SECONDS
