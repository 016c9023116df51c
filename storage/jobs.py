"""Job records in Redis: the only code that changes a job's status.

A record is a Redis hash. Every status change is a compare-and-set in a Lua
script: it fails unless the job is in an expected state (and, for the run that
owns it, carries the expected `run_id`), so a late or duplicate run can never
overwrite a cancelled or finished job. Each change is announced on the job's
pub/sub channel for the event stream.
"""

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn

import orjson
import redis
import redis.asyncio

from arrayq.storage import fairshare, keys, results, webhooks
from arrayq.storage.errors import Conflict, Expired, IdempotencyMismatch, NotFound
from arrayq.storage.redis_client import translate_redis_errors
from arrayq.storage.stats import DURATION_BUCKETS


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# Status change guarded by the current status and, when given, the run that owns
# the job. A change to a final status is counted for /metrics here, where it
# happens exactly once: by op and status, and the run time of a run that ended
# (not a cancel) into the duration buckets. A job that succeeds becomes the
# cache entry of its `cache_key` (the entry lives as long as the job), and a
# final job drops its inline inputs.
# A final job expires its own `ttl` (else ARGV[4]) after now: the record then,
# and a tombstone that long plus ARGV[7] later; its objects are listed in the
# expiring set for the workers' cleanup.
# A final job leaves its tenant's fair share, and backlog heads move on: their
# ids and ops are returned (the caller sends them to the broker).
# A final status is a webhook event of the job's callback, due at once.
# ARGV: allowed statuses (comma list), run_id guard ('' = any), new status, ttl
# seconds, event type, now, tombstone ttl seconds, fair-share limit, then
# field/value pairs to set.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, ''} end
if not string.find(',' .. ARGV[1] .. ',', ',' .. status .. ',', 1, true) then
  return {-1, status}
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[2] then return {-2, status} end
local released = {}
local doomed = {}
redis.call('HSET', KEYS[1], 'status', ARGV[3], unpack(ARGV, 9))
local tenant, seq = unpack(redis.call('HMGET', KEYS[1], 'tenant', 'seq'))
redis.call('ZREM', {STATUS_INDEX_OLD}, KEYS[3])
redis.call('ZADD', {STATUS_INDEX_NEW}, seq, KEYS[3])
redis.call('EXPIRE', {STATUS_INDEX_NEW}, ARGV[4])
redis.call('ZREM', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[5], KEYS[3])
if ARGV[3] == 'queued' then redis.call('ZADD', KEYS[5], ARGV[6], KEYS[3]) end
if ARGV[3] == 'succeeded' or ARGV[3] == 'failed' or ARGV[3] == 'cancelled' then
  redis.call('HDEL', KEYS[1], 'inline')
  local op, started = unpack(redis.call('HMGET', KEYS[1], 'op', 'started_ts'))
  redis.call('HINCRBY', KEYS[6], op .. '|' .. ARGV[3], 1)
  if status == 'running' and ARGV[3] ~= 'cancelled' and started then
    local seconds = math.max(tonumber(ARGV[6]) - tonumber(started), 0)
    local bound = '+Inf'
    for _, limit in ipairs({BUCKETS}) do
      if seconds <= tonumber(limit) then bound = limit break end
    end
    redis.call('HINCRBY', KEYS[7], op .. '|' .. bound, 1)
    redis.call('HINCRBY', KEYS[7], op .. '|count', 1)
    redis.call('HINCRBYFLOAT', KEYS[7], op .. '|sum', seconds)
  end
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or ARGV[4])
  local expires = string.format('%.3f', tonumber(ARGV[6]) + ttl)
  redis.call('HSET', KEYS[1], 'expires_ts', expires)
  if tonumber(redis.call('HGET', 'NEEDED', KEYS[3]) or '0') > 0 then
    redis.call('PERSIST', KEYS[1])  -- a job that references it has not started
  else
    redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
  end
  redis.call('SET', KEYS[8], expires .. '|' .. tenant, 'PX', math.ceil((ttl + ARGV[7]) * 1000))
  redis.call('ZADD', KEYS[9], expires, KEYS[3] .. '|' .. tenant)
  -- Dependents first: they enter in submission order with the backlog, which
  -- the room this job leaves then lets move on.
  doomed = release_dependents(KEYS[3], ARGV[3], ARGV[6], released, tenant, tonumber(ARGV[8]))
  for _, pair in ipairs(fair_release(KEYS[3], tenant, tonumber(ARGV[8]), ARGV[6])) do
    table.insert(released, pair)
  end
  unneed(KEYS[1], ARGV[6])
  if ARGV[3] == 'succeeded' then
    local entry, from = unpack(redis.call('HMGET', KEYS[1], 'cache_key', 'cached_from'))
    if from then
      redis.call('HINCRBY', KEYS[10], op, 1)
    elseif entry then
      redis.call('SET', entry, KEYS[3], 'PX', math.ceil(ttl * 1000))
    end
  end
  webhook_event(KEYS[1], KEYS[3], ARGV[3], ARGV[6])
else
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
redis.call('PUBLISH', KEYS[4], ARGV[5])
return {1, status, released, doomed}
"""
# The jobs waiting for job `id` when it becomes final: on success each stops
# waiting for it and, waiting for nothing more, goes on the queue (appended to
# `released`, whose messages the caller sends); otherwise the waiting ones are
# returned, to be failed with dependency_failed by the caller (a crash in
# between is repaired by the maintenance sweep).
_DEPENDENTS_LUA = """
-- The job of `record` has started or ended: the jobs it references may expire
-- once no other job that has not started needs them.
local function unneed(record, now)
  local needs = redis.call('HGET', record, 'needs')
  if not needs or needs == '' then return end
  redis.call('HDEL', record, 'needs')
  for x in string.gmatch(needs, '[^,]+') do
    if redis.call('HINCRBY', 'NEEDED', x, -1) <= 0 then
      redis.call('HDEL', 'NEEDED', x)
      local expires = redis.call('HGET', 'JOBPREFIX' .. x, 'expires_ts')
      if expires then
        local left = math.max(math.ceil((tonumber(expires) - tonumber(now)) * 1000), 1)
        redis.call('PEXPIRE', 'JOBPREFIX' .. x, left)
      end
    end
  end
end

local function release_dependents(id, to, now, released, tenant, limit)
  local doomed = {}
  local dependents = 'DEPENDENTS' .. id
  for _, d in ipairs(redis.call('SMEMBERS', dependents)) do
    local record = 'JOBPREFIX' .. d
    local waits = 'WAITSPREFIX' .. d
    local queued_now = redis.call('HGET', record, 'status') == 'queued'
    if queued_now and redis.call('SISMEMBER', waits, id) == 1 then
      if to == 'succeeded' then
        redis.call('SREM', waits, id)
        local left = redis.call('SMEMBERS', waits)
        redis.call('HSET', record, 'waiting', table.concat(left, ','))
        if #left == 0 then  -- on the queue now, or in the backlog if no room
          redis.call('ZREM', 'WAITING', d)
          if fair_admit(d, tenant, redis.call('HGET', record, 'seq'), limit, now) == 1 then
            table.insert(released, d)
            table.insert(released, redis.call('HGET', record, 'op'))
          end
        end
        redis.call('PUBLISH', 'CHANNELPREFIX' .. d, 'status')
      else
        table.insert(doomed, d)
      end
    end
  end
  redis.call('DEL', dependents)
  return doomed
end
"""
_DEPENDENTS_LUA = (
    _DEPENDENTS_LUA.replace("DEPENDENTS", keys.job_dependents_key(""))
    .replace("JOBPREFIX", keys.job_key(""))
    .replace("WAITSPREFIX", keys.job_waits_key(""))
    .replace("WAITING", keys.waiting_key())
    .replace("CHANNELPREFIX", keys.job_channel(""))
    .replace("NEEDED", keys.needed_key())
)

# Make a just-recorded job wait for the jobs it references that have not
# finished: registered with each (atomically with their final transitions, so
# none can finish unnoticed) and taken off the queued set until released.
# A waiting job takes no fair-share room: what it leaves lets the backlog move
# on (those released are returned, flat, for the caller to send).
# KEYS: record, queued set, waiting set. ARGV: job id, now, ttl, fair-share
# limit, referenced ids. Returns how many it waits for, 'id status' of one that
# cannot succeed, and the released jobs.
_WAIT = (
    fairshare.LUA
    + """
local pending, problem = {}, ''
local released = {}
for i = 5, #ARGV do
  local x = ARGV[i]
  local s = redis.call('HGET', 'JOBPREFIX' .. x, 'status')
  if s == 'queued' or s == 'running' then
    redis.call('SADD', 'WAITSPREFIX' .. ARGV[1], x)
    redis.call('EXPIRE', 'WAITSPREFIX' .. ARGV[1], ARGV[3])
    redis.call('SADD', 'DEPENDENTS' .. x, ARGV[1])
    redis.call('EXPIRE', 'DEPENDENTS' .. x, ARGV[3])
    table.insert(pending, x)
  elseif s ~= 'succeeded' then
    problem = x .. ' ' .. (s or 'expired')
  end
end
if #pending > 0 and problem == '' then
  redis.call('HSET', KEYS[1], 'waiting', table.concat(pending, ','))
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  local tenant = redis.call('HGET', KEYS[1], 'tenant')
  fair_wait(ARGV[1], tenant)
  released = fair_fill(tenant, tonumber(ARGV[4]), ARGV[2])
end
return {#pending, problem, released}
"""
)
_WAIT = (
    _WAIT.replace("DEPENDENTS", keys.job_dependents_key(""))
    .replace("JOBPREFIX", keys.job_key(""))
    .replace("WAITSPREFIX", keys.job_waits_key(""))
)

# Record that a new job needs the jobs it references: counted, and kept from
# expiring (`unneed` gives them back their expiry). KEYS: record, needed hash.
# ARGV: referenced ids.
_NEED = """
redis.call('HSET', KEYS[1], 'needs', table.concat(ARGV, ','))
for _, x in ipairs(ARGV) do
  redis.call('HINCRBY', KEYS[2], x, 1)
  redis.call('PERSIST', 'JOBPREFIX' .. x)
end
return 1
""".replace("JOBPREFIX", keys.job_key(""))

# The job has read its inputs: the jobs it references may expire. KEYS: record.
# ARGV: now.
_UNNEED = fairshare.LUA + _DEPENDENTS_LUA + "unneed(KEYS[1], ARGV[1])\nreturn 1\n"

_TRANSITION = (
    fairshare.LUA
    + webhooks.EVENT_LUA
    + _DEPENDENTS_LUA
    + (
        _TRANSITION.replace("{BUCKETS}", "{" + ", ".join(f"'{b}'" for b in DURATION_BUCKETS) + "}")
        .replace("{STATUS_INDEX_OLD}", keys.tenant_status_key_lua("tenant", "status"))
        .replace("{STATUS_INDEX_NEW}", keys.tenant_status_key_lua("tenant", "ARGV[3]"))
        .replace("NEEDED", keys.needed_key())
    )
)

# Start a run: queued -> running, or take over a running job whose heartbeat is
# older than ARGV[3] (its worker died). Refuses once attempts reach the cap. The
# first start is the `running` webhook event.
# ARGV: run_id, now, stale_before, max_attempts, worker, now as ISO 8601.
# Returns the claimed record, saving the claiming run a read.
_START = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, ''} end
if status == 'running' then
  if tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0') >= tonumber(ARGV[3]) then
    return {-1, status}
  end
elseif status ~= 'queued' then
  return {-1, status}
elseif (redis.call('HGET', KEYS[1], 'waiting') or '') ~= '' then
  return {-1, 'waiting'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[4]) then return {-3, tostring(attempts)} end
redis.call('HSET', KEYS[1], 'status', 'running', 'run_id', ARGV[1], 'heartbeat', ARGV[2],
           'started_at', ARGV[6], 'started_ts', ARGV[2], 'worker', ARGV[5], 'progress', '0')
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local tenant, seq = unpack(redis.call('HMGET', KEYS[1], 'tenant', 'seq'))
redis.call('ZREM', {STATUS_INDEX_OLD}, KEYS[3])
redis.call('ZADD', {STATUS_INDEX_RUNNING}, seq, KEYS[3])
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[3])
redis.call('ZREM', KEYS[5], KEYS[3])
webhook_event(KEYS[1], KEYS[3], 'running', ARGV[2])
redis.call('PUBLISH', KEYS[4], 'status')
return {1, redis.call('HGETALL', KEYS[1])}
"""
_START = webhooks.EVENT_LUA + _START.replace(
    "{STATUS_INDEX_OLD}", keys.tenant_status_key_lua("tenant", "status")
).replace("{STATUS_INDEX_RUNNING}", keys.tenant_status_key_lua("tenant", "'running'"))

# Record a new job in one step: sequence number, record, tenant index, queued
# set and submission count, and, with an Idempotency-Key, the key's claim. A key
# already bound to a job that still exists wins: nothing is written and that
# job's id is returned, so concurrent duplicates all get the one job and a key
# is never bound to a job that was not recorded.
# KEYS: record, tenant index, queued set, submitted stats, tenant sequence,
# idempotency key (or the record again when there is none), tenant's queued index.
# The job goes on the queue, or into its tenant's backlog (fair share): the
# reply's third item says which (1: queued).
# ARGV: job id, ttl, now, idempotency value ('' = no key), op, fair-share limit,
# tenant, field/value pairs.
_CREATE = (
    fairshare.LUA
    + """
if ARGV[4] ~= '' then
  local bound = redis.call('GET', KEYS[6])
  if bound then
    local first = string.match(bound, '^[^:]*')
    if redis.call('EXISTS', 'KEYPREFIX' .. first) == 1 then return {0, bound} end
  end
end
local seq = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], 'seq', seq, unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[7], seq, ARGV[1])
redis.call('EXPIRE', KEYS[7], ARGV[2])
local admitted = fair_admit(ARGV[1], ARGV[7], seq, tonumber(ARGV[6]), ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
if ARGV[4] ~= '' then redis.call('SET', KEYS[6], ARGV[4], 'EX', ARGV[2]) end
return {1, tostring(seq), admitted}
""".replace("KEYPREFIX", keys.job_key(""))
)

# Remove a job that was recorded but could not be queued, and release its
# Idempotency-Key if the key is bound to it. KEYS: record, tenant index, queued
# set, running set, idempotency key (or the record), tenant's queued index.
# ARGV: job id, key value.
_FORGET = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[2] ~= '' and redis.call('GET', KEYS[5]) == ARGV[2] then redis.call('DEL', KEYS[5]) end
redis.call('SREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
return 1
"""

# Progress and heartbeat of the run that owns a running job. ARGV: run_id, now,
# progress ('' = heartbeat only).
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'heartbeat', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[3])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'progress', ARGV[3])
  redis.call('PUBLISH', KEYS[4], 'progress')
end
return 1
"""


# Delete a cache entry if it still names the given job. KEYS: entry. ARGV: job id.
_DROP_ENTRY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def iso_time(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Job:
    """A job record as stored; `document()` is what the API shows."""

    id: str
    tenant: str
    op: str
    status: JobStatus
    seq: int
    params: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    queue: str
    progress: float = 0.0
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    error: dict[str, str] | None = None
    result: dict[str, Any] | None = None
    run_id: str = ""
    heartbeat: float = 0.0
    worker: str = ""
    expires_ts: float | None = None
    backlogged: bool = False  # waiting for room in its tenant's fair share
    # The job whose result a cache hit serves; the content digest of each output
    # (by name) once succeeded; inputs small enough to travel in the record
    # (base64 by input name, dropped once final).
    cached_from: str | None = None
    waiting_for: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    inline: dict[str, str] = field(default_factory=dict)
    # {"url", "events"} as asked, and each event's delivery state so far.
    callback: dict[str, Any] | None = None
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> "Job":
        return cls(
            id=fields["id"],
            tenant=fields["tenant"],
            op=fields["op"],
            status=JobStatus(fields["status"]),
            seq=int(fields["seq"]),
            params=orjson.loads(fields.get("params") or "{}"),
            inputs=orjson.loads(fields.get("inputs") or "{}"),
            queue=fields.get("queue", "default"),
            progress=float(fields.get("progress") or 0.0),
            created_at=fields.get("created_at", ""),
            started_at=fields.get("started_at") or None,
            finished_at=fields.get("finished_at") or None,
            attempts=int(fields.get("attempts") or 0),
            error=orjson.loads(fields["error"]) if fields.get("error") else None,
            result=orjson.loads(fields["result"]) if fields.get("result") else None,
            run_id=fields.get("run_id", ""),
            heartbeat=float(fields.get("heartbeat") or 0.0),
            worker=fields.get("worker", ""),
            expires_ts=float(fields["expires_ts"]) if fields.get("expires_ts") else None,
            backlogged=fields.get("backlog") == "1",
            cached_from=fields.get("cached_from") or None,
            waiting_for=[x for x in (fields.get("waiting") or "").split(",") if x]
            if fields.get("status") == "queued"
            else [],
            digests=orjson.loads(fields["digests"]) if fields.get("digests") else {},
            inline=orjson.loads(fields["inline"]) if fields.get("inline") else {},
            callback=orjson.loads(fields["callback"]) if fields.get("callback") else None,
            deliveries=webhooks.delivery_states(fields) if fields.get("callback") else {},
        )

    @property
    def facts(self) -> results.ResultFacts | None:
        """What the result is, per output (None until the job has succeeded)."""
        if self.result is None:
            return None
        return results.from_record(self.result, tenant=self.tenant, job_id=self.id)

    def document(self) -> dict[str, Any]:
        base = f"/jobs/{self.id}"
        facts = self.facts
        links = {
            "self": base,
            "result": f"{base}/result",
            "url": f"{base}/result/url",
            "events": f"{base}/events",
        }
        if facts is not None and facts.multi:
            links["outputs"] = {name: f"{base}/outputs/{name}" for name in facts.outputs}
        return {
            "id": self.id,
            "op": self.op,
            "status": self.status.value,
            "progress": self.progress,
            "params": self.params,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
            "error": self.error,
            "result": None if facts is None else results.document_view(facts),
            "expires_at": iso_time(self.expires_ts) if self.expires_ts is not None else None,
            "waiting_for": self.waiting_for,
            "cached_from": self.cached_from,
            "callback": None
            if self.callback is None
            else {**self.callback, "deliveries": self.deliveries},
            "links": links,
        }


@dataclass(frozen=True)
class Idempotency:
    """An `Idempotency-Key` and the digest of the request body it came with."""

    tenant: str
    key: str
    body_digest: str

    @property
    def redis_key(self) -> str:
        return keys.idempotency_key(self.tenant, hashlib.sha256(self.key.encode()).hexdigest())

    def value(self, job_id: str) -> str:
        return f"{job_id}:{self.body_digest}"

    def first_job(self, stored: str) -> str:
        """The job id bound in `stored`; `IdempotencyMismatch` for another body."""
        first_id, _, first_digest = stored.partition(":")
        if first_digest != self.body_digest:
            raise IdempotencyMismatch("this Idempotency-Key was used with a different request body")
        return first_id


@dataclass(frozen=True)
class NewJob:
    tenant: str
    op: str
    params: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    queue: str
    id: str = ""
    idempotency: Idempotency | None = None
    ttl_seconds: int | None = None  # counted from the final status; None: the store's
    inline: dict[str, str] = field(default_factory=dict)
    # The result cache entry this job fills when it succeeds (a Redis key).
    cache_key: str | None = None
    callback: dict[str, Any] | None = None  # {"url", "events"}: checked already


@dataclass(frozen=True)
class Created:
    """What `JobStore.create` did: recorded `job`, or found the job an
    Idempotency-Key was bound to first (`created` False)."""

    job: Job
    created: bool


def _new_fields(new: NewJob) -> dict[str, str]:
    return {
        "id": new.id,
        "tenant": new.tenant,
        "op": new.op,
        "params": orjson.dumps(new.params).decode(),
        "inputs": orjson.dumps(new.inputs).decode(),
        "queue": new.queue,
        "attempts": "0",
        "created_at": utc_now(),
        **({"callback": orjson.dumps(new.callback).decode()} if new.callback else {}),
    }


async def read_jobs(client: redis.asyncio.Redis, job_ids: list[str]) -> dict[str, Job | None]:
    """Several records in one round trip on the async client (None: gone)."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(keys.job_key(job_id))
        records = await pipe.execute()
    return {
        job_id: Job.from_hash(fields) if fields else None
        for job_id, fields in zip(job_ids, records, strict=True)
    }


async def read_job(client: redis.asyncio.Redis, job_id: str, *, tenant: str) -> Job:
    """One record on the async client, in one round trip with its tombstone;
    `NotFound` and `Expired` as `JobStore.get`."""
    if not keys.is_valid_id(job_id):
        raise NotFound(f"no job {job_id!r}")
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.job_key(job_id))
        pipe.get(keys.tombstone_key(job_id))
        fields, tombstone = await pipe.execute()
    if not fields:
        raise_gone(job_id, tombstone, tenant)
    return found_job(job_id, fields, tenant)


def found_job(job_id: str, fields: dict[str, str], tenant: str | None) -> Job:
    """The record as a job, unless it is another tenant's or past its lifetime."""
    if tenant is not None and fields.get("tenant") != tenant:
        raise NotFound(f"no job {job_id!r}")
    job = Job.from_hash(fields)
    if job.expires_ts is not None and job.expires_ts <= time.time():
        raise Expired(job_id, job.expires_ts)
    return job


def raise_gone(job_id: str, tombstone: str | None, tenant: str | None) -> NoReturn:
    """`Expired` for the tenant's own job past its lifetime, else `NotFound`."""
    if tombstone:
        expired, _, owner = tombstone.partition("|")
        if tenant is None or owner == tenant:
            raise Expired(job_id, float(expired))
    raise NotFound(f"no job {job_id!r}")


class JobStore:
    """Reads and guarded writes of job records. One instance per process."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_seconds: int,
        tombstone_ttl_seconds: int = 2_592_000,
        max_active: int = 0,
        inline_max_bytes: int | None = None,
    ) -> None:
        self.redis = client
        self.ttl = ttl_seconds
        self.tombstone_ttl = tombstone_ttl_seconds
        self.max_active = max_active
        if inline_max_bytes is not None:
            results.set_inline_limit(inline_max_bytes)
        # Called with the (job id, op) pairs that a transition moved from a
        # backlog onto the queue, to send their broker messages.
        self.on_release: Callable[[list[tuple[str, str]]], None] | None = None
        self._transition = client.register_script(_TRANSITION)
        self._wait = client.register_script(_WAIT)
        self._need = client.register_script(_NEED)
        self._unneed = client.register_script(_UNNEED)
        self._start = client.register_script(_START)
        self._progress = client.register_script(_PROGRESS)
        self._create = client.register_script(_CREATE)
        self._forget = client.register_script(_FORGET)
        self._drop_entry = client.register_script(_DROP_ENTRY)

    # creation and reading

    def create(self, new: NewJob) -> Created:
        """Record a queued job (or find the job its Idempotency-Key names)."""
        fields = {**_new_fields(new), "status": JobStatus.QUEUED.value, "progress": "0"}
        if new.ttl_seconds is not None:
            fields["ttl"] = str(new.ttl_seconds)
        if new.inline:
            fields["inline"] = orjson.dumps(new.inline).decode()
        if new.cache_key:
            fields["cache_key"] = new.cache_key
        idem = new.idempotency
        record = keys.job_key(new.id)
        script_keys = [
            record,
            keys.tenant_jobs_key(new.tenant),
            keys.queued_key(),
            keys.stats_submitted_key(),
            keys.tenant_sequence_key(new.tenant),
            idem.redis_key if idem else record,
            keys.tenant_status_key(new.tenant, JobStatus.QUEUED),
        ]
        pairs = [item for pair in fields.items() for item in pair]
        args = [
            new.id,
            self.ttl,
            time.time(),
            idem.value(new.id) if idem else "",
            new.op,
            self.max_active,
            new.tenant,
            *pairs,
        ]
        with translate_redis_errors():
            code, detail, *admitted = self._create(keys=script_keys, args=args)
        if code == 0:
            assert idem is not None
            return Created(self.get(idem.first_job(detail), tenant=new.tenant), created=False)
        backlog = {} if admitted == [1] else {"backlog": "1"}
        return Created(Job.from_hash({**fields, "seq": detail, **backlog}), created=True)

    def create_cached(
        self, new: NewJob, source: Job, result: dict[str, Any] | None = None
    ) -> Created:
        """Record a job final at once with the cached result of `source`: created,
        then moved to succeeded by the same guarded transition as a run, so it
        expires, is listed and is counted (as a cache hit, too) like any job."""
        created = self.create(dataclasses.replace(new, inline={}, cache_key=None))
        if not created.created:
            return created
        self._change(
            new.id,
            allowed=(JobStatus.QUEUED,),
            to=JobStatus.SUCCEEDED,
            fields={
                "result": orjson.dumps(result or source.result).decode(),
                "digests": orjson.dumps(source.digests).decode(),
                "cached_from": source.id,
                "progress": "1",
                "finished_at": utc_now(),
            },
        )
        return Created(self.get(new.id, tenant=new.tenant), created=True)

    def cache_source(self, cache_key: str, tenant: str) -> Job | None:
        """The succeeded, computed (not cached) job of this tenant that the cache
        entry names, if it still exists."""
        with translate_redis_errors():
            job_id = self.redis.get(cache_key)
        if job_id is None:
            return None
        try:
            job = self.get(job_id, tenant=tenant)
        except NotFound:
            return None
        ok = job.status == JobStatus.SUCCEEDED and job.result and not job.cached_from
        return job if ok else None

    def drop_cache_entry(self, cache_key: str, job_id: str) -> None:
        """Forget an entry whose result is gone, unless it names another job by now."""
        with translate_redis_errors():
            self._drop_entry(keys=[cache_key], args=[job_id])

    def idempotent_job(self, idem: Idempotency) -> Job | None:
        """The job the key is bound to, if it still exists (checked before any work)."""
        with translate_redis_errors():
            stored = self.redis.get(idem.redis_key)
        if stored is None:
            return None
        try:
            return self.get(idem.first_job(stored), tenant=idem.tenant)
        except NotFound:
            return None

    def forget(self, job: Job, idem: Idempotency | None = None) -> None:
        """Remove a job that was recorded but not queued, releasing its key."""
        record = keys.job_key(job.id)
        script_keys = [
            record,
            keys.tenant_jobs_key(job.tenant),
            keys.queued_key(),
            keys.running_key(),
            idem.redis_key if idem else record,
            keys.tenant_status_key(job.tenant, JobStatus.QUEUED),
            keys.tenant_active_key(job.tenant),
            keys.tenant_backlog_key(job.tenant),
        ]
        with translate_redis_errors():
            self._forget(keys=script_keys, args=[job.id, idem.value(job.id) if idem else ""])

    def get(self, job_id: str, *, tenant: str | None = None) -> Job:
        """The job, or `NotFound` (also for another tenant's job)."""
        if not keys.is_valid_id(job_id):
            raise NotFound(f"no job {job_id!r}")
        with translate_redis_errors():
            fields = self.redis.hgetall(keys.job_key(job_id))
        if not fields:
            with translate_redis_errors():
                raise_gone(job_id, self.redis.get(keys.tombstone_key(job_id)), tenant)
        return found_job(job_id, fields, tenant)

    def list_jobs(
        self,
        tenant: str,
        *,
        limit: int,
        before_seq: int | None = None,
        status: JobStatus | None = None,
        op: str | None = None,
    ) -> tuple[list[Job], int | None]:
        """Newest first. Returns the jobs and the sequence number for the next page
        (or None). A status filter reads that status's own index, so finding the one
        failed job among 100,000 costs as little as a page of all jobs."""
        index = keys.tenant_status_key(tenant, status) if status else keys.tenant_jobs_key(tenant)
        found: list[Job] = []
        for job in self._scan_newest_first(index, before_seq, batch=limit + 1):
            if (status and job.status != status) or (op and job.op != op):
                continue  # moved on since the index was read, or another op
            if len(found) == limit:
                return found, found[-1].seq
            found.append(job)
        return found, None

    def _scan_newest_first(self, index: str, before_seq: int | None, batch: int) -> Iterator[Job]:
        upper = f"({before_seq}" if before_seq is not None else "+inf"
        while True:
            with translate_redis_errors():
                entries = self.redis.zrevrangebyscore(
                    index, upper, "-inf", start=0, num=batch, withscores=True
                )
                pipe = self.redis.pipeline(transaction=False)
                for job_id, _ in entries:
                    pipe.hgetall(keys.job_key(job_id))
                records = pipe.execute()
            expired = [
                job_id for (job_id, _), fields in zip(entries, records, strict=True) if not fields
            ]
            if expired:
                with translate_redis_errors():
                    self.redis.zrem(index, *expired)  # their records expired
            now = time.time()
            yield from (
                Job.from_hash(fields)
                for fields in records
                if fields and float(fields.get("expires_ts") or "inf") > now
            )
            if len(entries) < batch:
                return
            upper = f"({int(entries[-1][1])}"
            batch = max(batch, 200)  # past the first page, read ahead in larger steps

    def prune_indexes(self, batch: int = 1000) -> int:
        """Remove the ids of expired records from every tenant's listing indexes (the
        workers' periodic cleanup), so a listing never walks far past expired jobs."""
        removed = 0
        with translate_redis_errors():
            for index in self.redis.scan_iter(match=keys.tenant_index_pattern(), count=batch):
                if keys.is_tenant_index(index) and self.redis.type(index) == "zset":
                    removed += self._prune_index(index, batch)
        return removed

    def _prune_index(self, index: str, batch: int) -> int:
        removed = 0
        for start in range(0, self.redis.zcard(index), batch):
            ids = self.redis.zrange(index, start - removed, start - removed + batch - 1)
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.exists(keys.job_key(job_id))
            gone = [job_id for job_id, alive in zip(ids, pipe.execute(), strict=True) if not alive]
            if gone:
                removed += self.redis.zrem(index, *gone)
        return removed

    def running_ids(self, *, heartbeat_before: float) -> list[str]:
        """Running jobs whose last heartbeat is older than the given time."""
        with translate_redis_errors():
            return list(self.redis.zrangebyscore(keys.running_key(), "-inf", heartbeat_before))

    def queued_ids(self, *, queued_before: float) -> list[str]:
        """Queued jobs that were (re-)queued before the given time."""
        with translate_redis_errors():
            return list(self.redis.zrangebyscore(keys.queued_key(), "-inf", queued_before))

    def running_count(self) -> int:
        with translate_redis_errors():
            return int(self.redis.zcard(keys.running_key()))

    def queued_count(self) -> int:
        with translate_redis_errors():
            return int(self.redis.zcard(keys.queued_key()))

    def touch_queued(self, job_id: str) -> None:
        """Count a queued job as queued from now (it was just put on the queue again)."""
        with translate_redis_errors():
            self.redis.zadd(keys.queued_key(), {job_id: time.time()}, xx=True)

    def drop_queued(self, job_id: str) -> None:
        """Forget a queued id whose record has expired."""
        with translate_redis_errors():
            self.redis.zrem(keys.queued_key(), job_id)

    # transitions

    def start(
        self, job_id: str, *, run_id: str, worker: str, stale_after: float, max_attempts: int
    ) -> Job | None:
        """Claim the job for one run. None when it must not run now (final,
        cancelled, or alive in another run); `Conflict` when attempts are used up."""
        now = time.time()
        with translate_redis_errors():
            code, detail = self._start(
                keys=self._script_keys(job_id),
                args=[run_id, now, now - stale_after, max_attempts, worker, utc_now()],
            )
        if code == -3:
            raise Conflict(f"gave up after {detail} attempts: the worker died each time")
        if code != 1:
            return None
        return Job.from_hash(dict(zip(detail[::2], detail[1::2], strict=True)))

    def succeed(
        self,
        job_id: str,
        *,
        run_id: str,
        result: dict[str, Any],
        digests: dict[str, str] | None = None,
    ) -> bool:
        return self._change(
            job_id,
            allowed=(JobStatus.RUNNING,),
            to=JobStatus.SUCCEEDED,
            run_id=run_id,
            fields={
                "result": orjson.dumps(result).decode(),
                "digests": orjson.dumps(digests or {}).decode(),
                "progress": "1",
                "finished_at": utc_now(),
            },
        )

    def fail(
        self,
        job_id: str,
        *,
        error_type: str,
        message: str,
        run_id: str = "",
        allowed: tuple[JobStatus, ...] = (JobStatus.RUNNING,),
        traceback: str | None = None,
    ) -> bool:
        details = {"type": error_type, "message": message}
        if traceback:
            details["traceback"] = traceback
        error = orjson.dumps(details).decode()
        return self._change(
            job_id,
            allowed=allowed,
            to=JobStatus.FAILED,
            run_id=run_id,
            fields={"error": error, "finished_at": utc_now()},
        )

    def cancel(self, job_id: str) -> bool:
        return self._change(
            job_id,
            allowed=(JobStatus.QUEUED, JobStatus.RUNNING),
            to=JobStatus.CANCELLED,
            fields={"finished_at": utc_now()},
        )

    def requeue(self, job_id: str, *, run_id: str) -> bool:
        """Hand a running job back to the queue (its run stopped without finishing)."""
        return self._change(
            job_id,
            allowed=(JobStatus.RUNNING,),
            to=JobStatus.QUEUED,
            run_id=run_id,
            fields={"run_id": "", "progress": "0"},
        )

    def report(self, job_id: str, *, run_id: str, progress: float | None = None) -> bool:
        """Heartbeat of a run, with its progress when given. False once the run
        no longer owns a running job (cancelled, or taken over)."""
        value = "" if progress is None else repr(min(max(float(progress), 0.0), 1.0))
        with translate_redis_errors():
            return bool(
                self._progress(keys=self._script_keys(job_id), args=[run_id, time.time(), value])
            )

    def expired_objects(self, *, before: float, limit: int = 100) -> list[tuple[str, str]]:
        """(job id, tenant) of final jobs that expired before the given time and
        whose objects may still exist."""
        with translate_redis_errors():
            members = self.redis.zrangebyscore(keys.expiring_key(), "-inf", before, 0, limit)
        return [(member[:32], member[33:]) for member in members]

    def objects_deleted(self, job_id: str, tenant: str) -> None:
        with translate_redis_errors():
            self.redis.zrem(keys.expiring_key(), f"{job_id}|{tenant}")

    def delete(self, job_id: str) -> None:
        """Delete a job at once, with no tombstone (it then answers 404)."""
        job = self.get(job_id)
        with translate_redis_errors():
            pipe = self.redis.pipeline()
            pipe.delete(keys.job_key(job_id), keys.tombstone_key(job_id))
            pipe.zrem(keys.expiring_key(), f"{job_id}|{job.tenant}")
            pipe.zrem(keys.tenant_jobs_key(job.tenant), job_id)
            for status in JobStatus:
                pipe.zrem(keys.tenant_status_key(job.tenant, status), job_id)
            pipe.zrem(keys.running_key(), job_id)
            pipe.zrem(keys.queued_key(), job_id)
            pipe.execute()

    def _change(
        self,
        job_id: str,
        *,
        allowed: tuple[JobStatus, ...],
        to: JobStatus,
        fields: dict[str, str],
        run_id: str = "",
    ) -> bool:
        pairs = [item for pair in fields.items() for item in pair]
        with translate_redis_errors():
            code, _, *released = self._transition(
                keys=[
                    *self._script_keys(job_id),
                    keys.tombstone_key(job_id),
                    keys.expiring_key(),
                    keys.stats_cache_hits_key(),
                ],
                args=[
                    ",".join(allowed),
                    run_id,
                    to.value,
                    self.ttl,
                    "status",
                    time.time(),
                    self.tombstone_ttl,
                    self.max_active,
                    *pairs,
                ],
            )
        if released and released[0] and self.on_release is not None:
            self.on_release(fairshare.released_pairs(released[0]))
        if len(released) > 1 and released[1]:
            self.fail_dependents(job_id, to, released[1])
        return code == 1

    def fail_dependents(self, job_id: str, status: JobStatus | str, dependents: list[str]) -> None:
        """Fail the jobs waiting for `job_id`, which will never succeed; each
        failure fails the jobs waiting for it in turn."""
        said = {"failed": "failed", "cancelled": "was cancelled"}.get(str(status), str(status))
        for dependent in dependents:
            self.fail(
                dependent,
                error_type="dependency_failed",
                message=f"input job {job_id} {said}; this job did not run",
                allowed=(JobStatus.QUEUED,),
            )

    def wait_for(self, job_id: str, referenced: list[str]) -> tuple[int, str]:
        """Make a recorded job wait for the referenced jobs that are not finished.
        Returns how many it waits for and, if one can never succeed, 'id status'."""
        with translate_redis_errors():
            count, problem, released = self._wait(
                keys=[keys.job_key(job_id), keys.queued_key(), keys.waiting_key()],
                args=[job_id, time.time(), self.ttl, self.max_active, *referenced],
            )
        if released and self.on_release is not None:
            self.on_release(fairshare.released_pairs(released))
        return int(count), problem

    def need(self, job_id: str, referenced: list[str]) -> None:
        """The referenced jobs' records outlive their lifetime until this job has
        started or ended (then their own expiry time applies again)."""
        with translate_redis_errors():
            self._need(keys=[keys.job_key(job_id), keys.needed_key()], args=referenced)

    def unneed(self, job_id: str) -> None:
        """The job has read the results it references: they may expire now."""
        with translate_redis_errors():
            self._unneed(keys=[keys.job_key(job_id)], args=[time.time()])

    def needed_record(self, job_id: str, tenant: str) -> Job:
        """A job another job references, read even past its lifetime (its record is
        kept until the referencing job has started); `NotFound` once gone."""
        if not keys.is_valid_id(job_id):
            raise NotFound(f"no job {job_id!r}")
        with translate_redis_errors():
            fields = self.redis.hgetall(keys.job_key(job_id))
        if not fields or fields.get("tenant") != tenant:
            raise NotFound(f"no job {job_id!r}")
        return Job.from_hash(fields)

    def is_needed(self, job_id: str) -> bool:
        with translate_redis_errors():
            return int(self.redis.hget(keys.needed_key(), job_id) or 0) > 0

    def waiting_ids(self) -> list[str]:
        with translate_redis_errors():
            return list(self.redis.zrange(keys.waiting_key(), 0, -1))

    def waits_of(self, job_id: str) -> list[str]:
        with translate_redis_errors():
            return sorted(self.redis.smembers(keys.job_waits_key(job_id)))

    def forget_waiting(self, job_id: str) -> None:
        with translate_redis_errors():
            self.redis.zrem(keys.waiting_key(), job_id)

    @staticmethod
    def _script_keys(job_id: str) -> list[str]:
        return [
            keys.job_key(job_id),
            keys.running_key(),
            job_id,
            keys.job_channel(job_id),
            keys.queued_key(),
            keys.stats_finished_key(),
            keys.stats_duration_key(),
        ]
