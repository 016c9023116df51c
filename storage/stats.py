"""Job counters kept in Redis, so that every API replica reports the same
cluster-wide numbers whichever process (API or worker) saw the event.

A job's final status is counted exactly once: the script marks the job record
when it counts it, so the worker that ran the job and the API that cancelled it
can both report it without counting it twice.
"""

from collections import defaultdict
from dataclasses import dataclass, field

import redis

from storage import keys
from storage.redis_client import translate_redis_errors

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
INF = "+Inf"

SUBMITTED_KEY = f"{keys.PREFIX}:stats:submitted"
FINISHED_KEY = f"{keys.PREFIX}:stats:finished"
DURATION_KEY = f"{keys.PREFIX}:stats:duration"

# KEYS: job hash, submitted hash.
_SUBMITTED = """
local op = redis.call('HGET', KEYS[1], 'op')
if not op then return 0 end
redis.call('HINCRBY', KEYS[2], op, 1)
return 1
"""

# KEYS: job hash, finished hash, duration hash. ARGV: run seconds ('' = not
# measured), its bucket bound. Durations are observed for runs that ended in
# success or failure, not for cancellations.
_FINISHED = """
local status, op, counted = unpack(redis.call('HMGET', KEYS[1], 'status', 'op', 'stats_counted'))
if not status or counted then return 0 end
if status ~= 'succeeded' and status ~= 'failed' and status ~= 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'stats_counted', '1')
redis.call('HINCRBY', KEYS[2], op .. '|' .. status, 1)
if ARGV[1] ~= '' and status ~= 'cancelled' then
  redis.call('HINCRBY', KEYS[3], op .. '|' .. ARGV[2], 1)
  redis.call('HINCRBY', KEYS[3], op .. '|count', 1)
  redis.call('HINCRBYFLOAT', KEYS[3], op .. '|sum', ARGV[1])
end
return 1
"""


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


def bucket_bound(seconds: float) -> str:
    """The `le` bound of the smallest bucket that holds `seconds`."""
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return INF


class JobStats:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._submitted = client.register_script(_SUBMITTED)
        self._finished = client.register_script(_FINISHED)

    def record_submitted(self, job_id: str) -> bool:
        with translate_redis_errors():
            return bool(self._submitted(keys=[keys.job_key(job_id), SUBMITTED_KEY]))

    def record_finished(self, job_id: str, run_seconds: float | None = None) -> bool:
        """Count the job's final status once; False when it is not final, gone
        or already counted."""
        seconds = "" if run_seconds is None else repr(max(run_seconds, 0.0))
        bound = "" if run_seconds is None else bucket_bound(run_seconds)
        with translate_redis_errors():
            counted = self._finished(
                keys=[keys.job_key(job_id), FINISHED_KEY, DURATION_KEY], args=[seconds, bound]
            )
        return bool(counted)

    def snapshot(self) -> StatsSnapshot:
        with translate_redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for key in (SUBMITTED_KEY, FINISHED_KEY, DURATION_KEY):
                pipe.hgetall(key)
            submitted, finished, durations = pipe.execute()
        return StatsSnapshot(
            submitted={op: int(n) for op, n in submitted.items()},
            finished={_split(name): int(n) for name, n in finished.items()},
            durations=_durations(durations),
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
    for bound in (*map(repr, DURATION_BUCKETS), INF):
        running += int(values.get(bound, 0))
        buckets.append((bound, running))
    return Durations(buckets=buckets, count=running, sum=float(values.get("sum", 0.0)))
