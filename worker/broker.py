"""What the broker holds: the job ids of the messages waiting on the queues or
taken by a worker and not yet acknowledged (kombu's Redis layout)."""

import orjson
import redis

from arrayq.storage.redis_client import translate_redis_errors
from arrayq.worker.celery_app import QUEUES

UNACKED_KEY = "unacked"  # kombu's default `unacked_key`


def message_count(client: redis.Redis) -> int:
    """Messages waiting on the queues plus those taken and not acknowledged."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=True)
        for queue in QUEUES:
            pipe.llen(queue)
        pipe.hlen(UNACKED_KEY)
        return sum(pipe.execute())


def job_ids(client: redis.Redis) -> set[str]:
    """Ids of every message on the queues or taken (read in one transaction)."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=True)
        for queue in QUEUES:
            pipe.lrange(queue, 0, -1)
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
