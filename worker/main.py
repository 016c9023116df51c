"""Starting one Celery worker process for arrayq."""

import os
import socket

from celery import signals

from storage.settings import get_settings
from worker.celery_app import QUEUES, create_celery
from worker.context import build_context
from worker.maintenance import Maintenance
from worker.ops import load_ops


def run_worker(
    concurrency: int = 1, queues: str = ",".join(QUEUES), loglevel: str = "INFO"
) -> None:
    settings = get_settings()
    load_ops(settings.ops_module_names())  # a broken ops module fails here, at start
    app = create_celery(settings)
    maintenance: list[Maintenance] = []

    @signals.worker_ready.connect(weak=False)
    def start_maintenance(**_: object) -> None:
        maintenance.append(Maintenance(build_context(), app))
        maintenance[0].start()

    @signals.worker_shutting_down.connect(weak=False)
    def stop_maintenance(**_: object) -> None:
        for thread in maintenance:
            thread.stopping.set()

    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--hostname=arrayq-{os.getpid()}@{socket.gethostname()}",
            f"--loglevel={loglevel}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
        ]
    )
