"""kombu's Redis layout, described here only: the queues and the Redis keys
that hold their messages, and what the broker holds (the job ids of the
messages waiting on the queues or taken by a worker and not yet acknowledged)."""

import orjson
import redis

from arrayq.storage.redis_client import translate_redis_errors

QUEUES = ("default", "long")
UNACKED_KEY = "unacked"  # kombu's default `unacked_key`
# kombu's Redis transport keeps each priority level of a queue in its own list.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


def queue_keys(queue: str) -> list[str]:
    """The Redis lists of one queue: the plain one and one per priority level."""
    return [queue, *(f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS)]


def queue_lengths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting, by queue."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        for queue in QUEUES:
            for key in queue_keys(queue):
                pipe.llen(key)
        lengths = iter(pipe.execute())
    return {queue: sum(next(lengths) for _ in queue_keys(queue)) for queue in QUEUES}


def message_count(client: redis.Redis) -> int:
    """Messages waiting on the queues plus those taken and not acknowledged."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=True)
        for queue in QUEUES:
            for key in queue_keys(queue):
                pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        return sum(pipe.execute())


def job_ids(client: redis.Redis) -> set[str]:
    """Ids of every message on the queues or taken (read in one transaction)."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=True)
        for queue in QUEUES:
            for key in queue_keys(queue):
                pipe.lrange(key, 0, -1)
        pipe.hvals(UNACKED_KEY)
        *waiting, taken = pipe.execute()
    ids = {_job_id(raw) for messages in waiting for raw in messages}
    ids.update(_job_id(raw, taken=True) for raw in taken)
    return ids


def _job_id(raw: str, *, taken: bool = False) -> str:
    """The task id (our job id) of one message; '' for one that is not ours."""
    try:
        payload = orjson.loads(raw)
        message = payload[0] if taken else payload
        return str(message["headers"]["id"])
    except (orjson.JSONDecodeError, LookupError, TypeError):
        return ""
