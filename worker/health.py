"""Health probe of the workers on this host: `python -m arrayq.worker.health`.

A container's healthcheck (compose) or exec probe (Kubernetes). It pings, through the broker,
only the Celery nodes of this host (`arrayq-<pid>@<hostname>`, see `worker.main`), so it
succeeds only when this worker's own broker connection carries its remote-control messages:
a worker that lost Redis, hangs or has not started yet does not answer. It never asks the rest
of the cluster, so one bad worker does not make every container unhealthy. Exit 0 healthy, 1 not.
"""

import socket
import sys

from arrayq.storage.settings import get_settings
from arrayq.worker.celery_app import create_celery


def this_host_answers(timeout: float = 3.0) -> bool:
    app = create_celery(get_settings())
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


def main() -> None:
    sys.exit(0 if this_host_answers() else 1)


if __name__ == "__main__":
    main()
