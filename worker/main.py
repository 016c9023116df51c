"""Starting one Celery worker process for arrayq."""

import logging
import os

from celery import Celery, signals
from celery.exceptions import TimeLimitExceeded

from arrayq.storage.broker import QUEUES
from arrayq.storage.errors import ArrayqError
from arrayq.storage.redis_client import connect
from arrayq.storage.settings import get_settings
from arrayq.worker.celery_app import create_worker_celery, node_name
from arrayq.worker.context import build_context
from arrayq.worker.maintenance import Maintenance, fail_past_hard_limit
from arrayq.worker.ops import load_ops
from arrayq.worker.shutdown import ShutdownTimer
from arrayq.worker.webhook_sender import WebhookSender

log = logging.getLogger(__name__)


def run_worker(
    concurrency: int = 1, queues: str = ",".join(QUEUES), loglevel: str = "INFO"
) -> None:
    settings = get_settings()
    load_ops(settings.ops_module_names())  # a broken ops module fails here, at start
    app = create_worker_celery(settings)
    node = node_name(os.getpid())
    MainProcess(app, node).connect()
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--hostname={node}",
            f"--loglevel={loglevel}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
        ]
    )


class MainProcess:
    """Duties of the worker's main process (not its pool), run on Celery's signals."""

    def __init__(self, app: Celery, node: str) -> None:
        self.app = app
        self.node = node
        self.maintenance: Maintenance | None = None
        self.webhooks: WebhookSender | None = None

    def connect(self) -> None:
        signals.worker_ready.connect(self.start_maintenance, weak=False)
        signals.worker_shutting_down.connect(self.stop_maintenance, weak=False)
        signals.worker_shutting_down.connect(self.bound_shutdown, weak=False)
        signals.task_failure.connect(self.fail_on_hard_limit, weak=False)

    def start_maintenance(self, **_: object) -> None:
        self.maintenance = Maintenance(build_context(), self.app)
        self.maintenance.start()
        settings = self.maintenance.ctx.settings
        if settings.webhook_secret:
            client = connect(settings.redis_url, name="arrayq-webhooks")
            self.webhooks = WebhookSender(settings, client, self.node)
            self.webhooks.start()
        else:
            log.info("webhooks off: no ARRAYQ_WEBHOOK_SECRET")

    def stop_maintenance(self, **_: object) -> None:
        if self.maintenance is not None:
            self.maintenance.stopping.set()
        if self.webhooks is not None:
            self.webhooks.stop()

    def bound_shutdown(self, how: str = "", **_: object) -> None:
        """A warm shutdown waits for running jobs at most ARRAYQ_WORKER_SHUTDOWN_SECONDS."""
        if how == "Warm" and self.maintenance is not None:
            ShutdownTimer(self.maintenance.ctx, self.app, self.node).start()

    def fail_on_hard_limit(self, task_id: str, exception: BaseException, **_: object) -> None:
        """Sent here, in the main process, when the hard limit killed a pool process."""
        if not isinstance(exception, TimeLimitExceeded) or self.maintenance is None:
            return
        limit = float(exception.args[0]) if exception.args else 0.0
        try:
            fail_past_hard_limit(self.maintenance.ctx, task_id, self.node, limit)
        except ArrayqError as exc:
            log.warning("job %s passed its hard time limit; not marked failed: %s", task_id, exc)
