"""Fair share between tenants: at most K jobs of one tenant on the broker queue
or running; the tenant's other jobs wait in its backlog, in submission order.

A tenant's *active* set holds the ids it has on the queue or running; its
*backlog* holds the rest, scored by sequence. Both change only inside the job
scripts of `storage.jobs` (these Lua functions are pasted into them), so a job
enters the active set in the step that records it or ends another job, and
leaves it in the step that makes it final: nothing is released twice or lost.
A released job is put in the queued set in that step, so if its process dies
before sending the broker message, the workers' lost-message sweep sends it.
"""

from dataclasses import dataclass

import redis

from arrayq.storage import keys
from arrayq.storage.redis_client import translate_redis_errors

# fair_admit: a new job goes on the queue (1) or into its tenant's backlog (0).
# fair_wait: a new job waits for other jobs; it takes no room meanwhile.
# fair_release: a job became final; it leaves both, then backlog heads move on
# while the tenant has room. Returns the released ids and their ops, flat.
# A limit of 0 means no limit (a backlog left from a limit is emptied).
LUA = """
local function fair_fill(tenant, limit, now)
  local released = {}
  local active, backlog = ACTIVE_KEY, BACKLOG_KEY
  while limit == 0 or redis.call('SCARD', active) < limit do
    local head = redis.call('ZRANGE', backlog, 0, 0)[1]
    if not head then break end
    redis.call('ZREM', backlog, head)
    local record = JOB_PREFIX .. head
    if redis.call('HGET', record, 'status') == 'queued' then
      redis.call('HDEL', record, 'backlog')
      redis.call('SADD', active, head)
      redis.call('ZADD', QUEUED_KEY, now, head)
      table.insert(released, head)
      table.insert(released, redis.call('HGET', record, 'op'))
    end
  end
  return released
end

local function fair_admit(id, tenant, seq, limit, now)
  if limit == 0 then
    redis.call('ZADD', QUEUED_KEY, now, id)
    return 1
  end
  local active = ACTIVE_KEY
  redis.call('SADD', TENANTS_KEY, tenant)
  if redis.call('SCARD', active) < limit then
    redis.call('SADD', active, id)
    redis.call('ZADD', QUEUED_KEY, now, id)
    return 1
  end
  redis.call('ZADD', BACKLOG_KEY, seq, id)
  redis.call('HSET', JOB_PREFIX .. id, 'backlog', '1')
  return 0
end

-- A job that waits for other jobs is neither on the queue nor running: it
-- leaves its tenant's room and backlog, and comes back through fair_admit
-- (in its submission place) once it waits for nothing.
local function fair_wait(id, tenant)
  redis.call('SREM', ACTIVE_KEY, id)
  redis.call('ZREM', BACKLOG_KEY, id)
  redis.call('HDEL', JOB_PREFIX .. id, 'backlog')
end

local function fair_release(id, tenant, limit, now)
  redis.call('SREM', ACTIVE_KEY, id)
  redis.call('ZREM', BACKLOG_KEY, id)
  return fair_fill(tenant, limit, now)
end
"""
LUA = (
    LUA.replace("ACTIVE_KEY", keys.tenant_active_key_lua("tenant"))
    .replace("BACKLOG_KEY", keys.tenant_backlog_key_lua("tenant"))
    .replace("TENANTS_KEY", f"'{keys.fair_tenants_key()}'")
    .replace("QUEUED_KEY", f"'{keys.queued_key()}'")
    .replace("JOB_PREFIX", f"'{keys.job_key('')}'")
)

# The repair sweep of one tenant: active ids whose job is final or gone leave
# (a crash between two steps, or a record deleted), then the backlog moves on.
# ARGV: tenant, limit, now.
SWEEP = (
    LUA
    + """
local tenant, limit, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
for _, id in ipairs(redis.call('SMEMBERS', ACTIVE_KEY)) do
  local status = redis.call('HGET', JOB_PREFIX .. id, 'status')
  if status ~= 'queued' and status ~= 'running' then redis.call('SREM', ACTIVE_KEY, id) end
end
return fair_fill(tenant, limit, now)
""".replace("ACTIVE_KEY", keys.tenant_active_key_lua("tenant")).replace(
        "JOB_PREFIX", f"'{keys.job_key('')}'"
    )
)


def released_pairs(flat: list[str]) -> list[tuple[str, str]]:
    """(job id, op) of the jobs a script released, from its flat reply."""
    return list(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True)
class TenantShare:
    tenant: str
    active: int
    backlog: int


class FairShare:
    """Reads for /metrics, and the repair sweep."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._sweep = client.register_script(SWEEP)

    def tenants(self) -> list[TenantShare]:
        with translate_redis_errors():
            names = sorted(self.redis.smembers(keys.fair_tenants_key()))
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.scard(keys.tenant_active_key(name))
                pipe.zcard(keys.tenant_backlog_key(name))
            counts = pipe.execute()
        return [
            TenantShare(name, int(counts[2 * i]), int(counts[2 * i + 1]))
            for i, name in enumerate(names)
        ]

    def repair(self, tenant: str, limit: int, now: float) -> list[tuple[str, str]]:
        with translate_redis_errors():
            return released_pairs(self._sweep(args=[tenant, limit, now]))
