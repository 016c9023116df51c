"""Redis connections with timeouts short enough that a dead Redis is an error, not a hang."""

from collections.abc import Iterator
from contextlib import contextmanager

import redis
import redis.asyncio

from arrayq.storage.errors import BrokerUnavailable

_TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 4.0, "health_check_interval": 10}


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, **_TIMEOUTS)


def connect_async(url: str) -> redis.asyncio.Redis:
    # No socket_timeout: pub/sub readers block for long stretches on purpose.
    return redis.asyncio.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2.0)


@contextmanager
def translate_redis_errors() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"Redis is unreachable: {exc}") from exc
