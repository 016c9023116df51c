"""Health probe of the arrayq worker in this container (compose healthcheck, k8s exec probe).

It pings, through the broker, only the Celery nodes of this host (`arrayq-<pid>@<hostname>`,
see worker/main.py), so it succeeds only when this worker's own broker connection carries its
remote-control messages: a worker that lost Redis, hangs or has not started yet does not answer.
It never asks the rest of the cluster, so one bad worker does not make every container unhealthy.

A file of its own, run as `python /usr/local/lib/arrayq/worker_health.py`, importing Celery alone:
`import arrayq` brings the client, numpy and pydantic, and took 10 s on a loaded 2-core host,
longer than a healthcheck may. So it reads the one setting it needs, ARRAYQ_REDIS_URL, itself,
with the same default as storage/settings.py. Exit 0 healthy, 1 not.
"""

import os
import socket
import sys

from celery import Celery

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def this_host_answers(timeout: float = 3.0) -> bool:
    broker = os.environ.get("ARRAYQ_REDIS_URL") or DEFAULT_REDIS_URL
    app = Celery("arrayq-health", broker=broker, set_as_current=False)
    app.conf.broker_connection_retry = False
    app.conf.broker_transport_options = {"socket_connect_timeout": 2, "socket_timeout": 5}
    pattern = f"arrayq-*@{socket.gethostname()}"
    try:
        replies = app.control.ping(timeout=timeout, pattern=pattern, matcher="glob", limit=1)
    except Exception as exc:  # the broker itself is unreachable
        print(f"unhealthy: broker unreachable: {exc}", file=sys.stderr)
        return False
    finally:
        app.close()
    if not replies:
        print(f"unhealthy: no worker {pattern} answered within {timeout} s", file=sys.stderr)
    return bool(replies)


if __name__ == "__main__":
    sys.exit(0 if this_host_answers() else 1)
