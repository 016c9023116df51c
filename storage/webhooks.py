"""Webhook deliveries in Redis: a durable queue that every worker takes from.

A delivery is a hash (job, event, URL, tries, the job record as it was at the
event) and a member of one sorted set scored by when it is due. The event is
recorded by `EVENT_LUA`, pasted into the job scripts of `storage.jobs`, in the
same step as the status change, so no event is lost to a crash. A worker claims
due deliveries with a lease (their score moves to the lease's end, with the
worker's token in the hash) and renews it while it tries; a worker that dies
stops renewing, and another worker claims the delivery once the lease ends.
Only the holder of the token records the outcome, in the job record too.
"""

from dataclasses import dataclass
from typing import Literal

import orjson
import redis

from arrayq.storage import keys
from arrayq.storage.redis_client import translate_redis_errors

EVENTS = ("running", "succeeded", "failed", "cancelled")
DEFAULT_EVENTS = ("succeeded", "failed", "cancelled")
STATE_PREFIX = "wh:"  # job record field of one event's delivery state
Outcome = Literal["delivered", "retry", "failed"]

# webhook_event: the job of `record` (id `id`) has reached `event`; if its callback
# asks for that event and it has not happened before (a job may start twice), a
# delivery is due now, holding the record as it is (less inline inputs).
EVENT_LUA = """
local function webhook_event(record, id, event, now)
  local spec = redis.call('HGET', record, 'callback')
  if not spec then return end
  local callback = cjson.decode(spec)
  local wanted = false
  for _, e in ipairs(callback.events) do
    if e == event then wanted = true end
  end
  if not wanted or redis.call('HEXISTS', record, 'STATE' .. event) == 1 then return end
  redis.call('HSET', record, 'STATE' .. event, 'pending|0|')
  local snapshot = {}
  local fields = redis.call('HGETALL', record)
  for i = 1, #fields, 2 do
    if fields[i] ~= 'inline' then
      table.insert(snapshot, fields[i])
      table.insert(snapshot, fields[i + 1])
    end
  end
  local delivery = string.sub(redis.sha1hex(id .. '|' .. event), 1, 32)
  redis.call('HSET', 'DELIVERY' .. delivery, 'job', id, 'event', event, 'url', callback.url,
             'attempts', 0, 'record', cjson.encode(snapshot))
  redis.call('ZADD', 'DUE', now, delivery)
end
"""
_COMMON_LUA = """
local function set_state(job, event, status, attempts, code)
  if status ~= 'pending' then redis.call('HINCRBY', 'STATS', event .. '|' .. status, 1) end
  local record = 'JOB' .. job
  if redis.call('EXISTS', record) == 1 then
    redis.call('HSET', record, 'STATE' .. event, status .. '|' .. attempts .. '|' .. code)
  end
end
"""

# Claim up to ARGV[5] due deliveries. One whose tries are used up (its last try's
# worker died) ends failed instead. KEYS: due set. ARGV: now, lease end, token,
# worker, limit, max attempts. Returns id, fields, id, fields, ...
_CLAIM = """
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(due) do
  local key = 'DELIVERY' .. id
  local job, event, attempts = unpack(redis.call('HMGET', key, 'job', 'event', 'attempts'))
  if not job then
    redis.call('ZREM', KEYS[1], id)
  elseif tonumber(attempts) >= tonumber(ARGV[6]) then
    set_state(job, event, 'failed', attempts, redis.call('HGET', key, 'code') or '')
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', key)
  else
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    attempts = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'token', ARGV[3], 'worker', ARGV[4])
    set_state(job, event, 'pending', attempts, redis.call('HGET', key, 'code') or '')
    table.insert(out, id)
    table.insert(out, redis.call('HGETALL', key))
  end
end
return out
"""

# Record how a try ended, if the caller still holds the delivery. KEYS: due set.
# ARGV: id, token, outcome (delivered, retry, failed), status code ('' = none),
# when the next try is due.
_FINISH = """
local key = 'DELIVERY' .. ARGV[1]
if redis.call('HGET', key, 'token') ~= ARGV[2] then return 0 end
local job, event, attempts = unpack(redis.call('HMGET', key, 'job', 'event', 'attempts'))
if ARGV[3] == 'retry' then
  set_state(job, event, 'pending', attempts, ARGV[4])
  redis.call('HSET', key, 'code', ARGV[4])
  redis.call('HDEL', key, 'token', 'worker')
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
else
  set_state(job, event, ARGV[3], attempts, ARGV[4])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', key)
end
return 1
"""

# Extend the leases the caller holds. KEYS: due set. ARGV: lease end, token, ids.
_RENEW = """
local renewed = 0
for i = 3, #ARGV do
  if redis.call('HGET', 'DELIVERY' .. ARGV[i], 'token') == ARGV[2] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"""


def _fill(script: str) -> str:
    return (
        script.replace("DELIVERY", keys.webhook_key(""))
        .replace("'DUE'", f"'{keys.webhooks_due_key()}'")
        .replace("'JOB'", f"'{keys.job_key('')}'")
        .replace("'STATS'", f"'{keys.stats_webhooks_key()}'")
        .replace("STATE", STATE_PREFIX)
    )


EVENT_LUA = _fill(EVENT_LUA)


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds until it records the outcome or its lease ends."""

    id: str
    job_id: str
    event: str
    url: str
    attempts: int  # including this try
    record: dict[str, str]  # the job record at the event
    token: str


def delivery_states(fields: dict[str, str]) -> dict[str, dict[str, object]]:
    """The `deliveries` of a job document, from the job record's state fields."""
    states: dict[str, dict[str, object]] = {}
    for name, value in fields.items():
        if name.startswith(STATE_PREFIX):
            status, attempts, code = [*value.split("|"), "", ""][:3]
            states[name[len(STATE_PREFIX) :]] = {
                "status": status,
                "attempts": int(attempts or 0),
                "last_status_code": int(code) if code else None,
            }
    return {event: states[event] for event in EVENTS if event in states}


class Deliveries:
    """Claims and outcomes of webhook deliveries (the workers' side)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._claim = client.register_script(_fill(_COMMON_LUA + _CLAIM))
        self._finish = client.register_script(_fill(_COMMON_LUA + _FINISH))
        self._renew = client.register_script(_fill(_RENEW))

    def claim(
        self,
        *,
        now: float,
        lease_until: float,
        token: str,
        worker: str,
        limit: int,
        max_attempts: int,
    ) -> list[Claimed]:
        with translate_redis_errors():
            flat = self._claim(
                keys=[keys.webhooks_due_key()],
                args=[now, lease_until, token, worker, limit, max_attempts],
            )
        pairs = zip(flat[::2], flat[1::2], strict=True)
        return [_claimed(delivery_id, fields, token) for delivery_id, fields in pairs]

    def finish(
        self, claimed: Claimed, outcome: Outcome, code: int | None, next_due: float = 0.0
    ) -> bool:
        """False when the lease was lost meanwhile (another worker holds it now)."""
        with translate_redis_errors():
            return bool(
                self._finish(
                    keys=[keys.webhooks_due_key()],
                    args=[
                        claimed.id,
                        claimed.token,
                        outcome,
                        "" if code is None else code,
                        next_due,
                    ],
                )
            )

    def renew(self, ids: list[str], token: str, lease_until: float) -> int:
        if not ids:
            return 0
        with translate_redis_errors():
            return int(self._renew(keys=[keys.webhooks_due_key()], args=[lease_until, token, *ids]))

    def count(self) -> int:
        """Deliveries not yet ended (due later, due now, or being tried)."""
        with translate_redis_errors():
            return int(self.redis.zcard(keys.webhooks_due_key()))


@dataclass(frozen=True)
class WebhookStats:
    pending: int  # not yet ended
    ended: dict[tuple[str, str], int]  # by (event, outcome)


def webhook_stats(client: redis.Redis) -> WebhookStats:
    """For /metrics."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        pipe.zcard(keys.webhooks_due_key())
        pipe.hgetall(keys.stats_webhooks_key())
        pending, ended = pipe.execute()
    counts = {}
    for name, count in ended.items():
        event, _, outcome = name.partition("|")
        counts[event, outcome] = int(count)
    return WebhookStats(int(pending), counts)


def _claimed(delivery_id: str, pairs: list[str], token: str) -> Claimed:
    fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
    flat = orjson.loads(fields.get("record") or "[]")
    return Claimed(
        id=delivery_id,
        job_id=fields["job"],
        event=fields["event"],
        url=fields["url"],
        attempts=int(fields["attempts"]),
        record=dict(zip(flat[::2], flat[1::2], strict=True)),
        token=token,
    )
