"""Redis connections with timeouts short enough that a dead Redis is an error, not a hang."""

from collections.abc import Iterator
from contextlib import contextmanager

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff

from arrayq.storage.errors import BrokerUnavailable

_TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 4.0, "health_check_interval": 10}


def connect(url: str, *, name: str | None = None) -> redis.Redis:
    """`name` shows in CLIENT LIST, to tell the processes' connections apart."""
    return redis.Redis.from_url(url, decode_responses=True, client_name=name, **_TIMEOUTS)


# The async client's commands are short and pipelined; a small pool that makes
# callers queue for a connection keeps a burst of requests (hundreds of long
# polls starting at once) from opening a connection each.
ASYNC_POOL_CONNECTIONS = 4
ASYNC_POOL_WAIT_SECONDS = 4.0


def connect_async(url: str, *, name: str | None = None) -> redis.asyncio.Redis:
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        client_name=name,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=4.0,
        max_connections=ASYNC_POOL_CONNECTIONS,
        timeout=ASYNC_POOL_WAIT_SECONDS,
        health_check_interval=10,
        # A pooled connection that a Redis restart closed is replaced at once,
        # pipelines included (they have no retry of their own otherwise).
        retry=AsyncRetry(ExponentialBackoff(cap=0.25, base=0.02), 2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.asyncio.Redis.from_pool(pool)


@contextmanager
def translate_redis_errors() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"Redis is unreachable: {exc}") from exc
