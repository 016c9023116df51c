"""Reading the job counters kept in Redis for /metrics.

The counters are written by the status machine (`storage.jobs`) at the moment
a job is created or reaches a final status, so each is counted exactly once
and every API replica reads the same cluster-wide numbers.
"""

from collections import defaultdict
from dataclasses import dataclass, field

import redis

from arrayq.storage import keys
from arrayq.storage.redis_client import translate_redis_errors

# Upper bounds of the job run-time histogram, in seconds, as stored in Redis.
DURATION_BUCKETS = (
    "0.01",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1.0",
    "2.5",
    "5.0",
    "10.0",
    "30.0",
    "60.0",
    "300.0",
    "1800.0",
)
INF = "+Inf"


@dataclass
class Durations:
    """One op's run durations: cumulative bucket counts, as Prometheus wants them."""

    buckets: list[tuple[str, int]]
    count: int
    sum: float


@dataclass
class StatsSnapshot:
    submitted: dict[str, int] = field(default_factory=dict)
    finished: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, Durations] = field(default_factory=dict)
    cache_hits: dict[str, int] = field(default_factory=dict)


class JobStats:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def snapshot(self) -> StatsSnapshot:
        with translate_redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for key in (
                keys.stats_submitted_key(),
                keys.stats_finished_key(),
                keys.stats_duration_key(),
                keys.stats_cache_hits_key(),
            ):
                pipe.hgetall(key)
            submitted, finished, durations, cache_hits = pipe.execute()
        return StatsSnapshot(
            submitted={op: int(n) for op, n in submitted.items()},
            finished={_split(name): int(n) for name, n in finished.items()},
            durations=_durations(durations),
            cache_hits={op: int(n) for op, n in cache_hits.items()},
        )


def _split(field_name: str) -> tuple[str, str]:
    op, _, suffix = field_name.rpartition("|")
    return op, suffix


def _durations(fields: dict[str, str]) -> dict[str, Durations]:
    by_op: dict[str, dict[str, str]] = defaultdict(dict)
    for name, value in fields.items():
        op, suffix = _split(name)
        by_op[op][suffix] = value
    return {op: _cumulative(values) for op, values in by_op.items()}


def _cumulative(values: dict[str, str]) -> Durations:
    running = 0
    buckets = []
    for bound in (*DURATION_BUCKETS, INF):
        running += int(values.get(bound, 0))
        buckets.append((bound, running))
    return Durations(buckets=buckets, count=running, sum=float(values.get("sum", 0.0)))
