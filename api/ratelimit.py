"""Requests per minute per tenant, counted in Redis so that every API replica
shares one budget.

The limit is a GCRA (generic cell rate algorithm): Redis keeps, per tenant, the
"theoretical arrival time" of the next request. Each request moves it one
emission interval (60 s / rate) into the future; a request is refused while
that time is more than `burst` intervals ahead of now. Unlike fixed windows
there is no boundary at which a client gets twice its rate, and the wait until
the next allowed request is exact. Redis's own clock is used, so replicas with
skewed clocks still agree.
"""

import math
from dataclasses import dataclass

import redis

from arrayq.api.errors import RateLimited
from arrayq.storage import keys
from arrayq.storage.redis_client import translate_redis_errors

PERIOD_SECONDS = 60

# KEYS[1]: the tenant's state. ARGV: emission interval (µs), burst tolerance (µs).
# Returns {1, 0} when allowed, {0, µs to wait} when refused.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - tonumber(ARGV[2]) - now
if wait > 0 then return {0, wait} end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {1, 0}
"""


@dataclass(frozen=True)
class RateLimit:
    per_minute: int
    burst: int

    @property
    def interval_us(self) -> int:
        return math.ceil(PERIOD_SECONDS * 1_000_000 / self.per_minute)


class RateLimiter:
    """One per API process; `check` raises `RateLimited` when the tenant is over."""

    def __init__(self, client: redis.Redis, limit: RateLimit) -> None:
        self.limit = limit
        self._script = client.register_script(_GCRA)

    def check(self, tenant: str) -> None:
        interval = self.limit.interval_us
        with translate_redis_errors():
            allowed, wait_us = self._script(
                keys=[keys.rate_limit_key(tenant, PERIOD_SECONDS)],
                args=[interval, interval * self.limit.burst],
            )
        if not allowed:
            raise rate_limited(self.limit, wait_us)


def rate_limited(limit: RateLimit, wait_us: int) -> RateLimited:
    retry_after = max(1, math.ceil(wait_us / 1_000_000))
    return RateLimited(
        f"over the limit of {limit.per_minute} requests per minute; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def limiter_from(client: redis.Redis, per_minute: int, burst: int) -> RateLimiter | None:
    """The limiter of the settings, or None when rate limiting is off."""
    if per_minute <= 0:
        return None
    return RateLimiter(client, RateLimit(per_minute=per_minute, burst=burst or per_minute))
