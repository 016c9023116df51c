"""The webhook deliveries of one worker: a thread in the worker's main process
claims due deliveries from Redis and tries each in a small thread pool, renewing
its leases while they run (so a slow receiver never makes a second worker try
too, and a dead worker's deliveries pass to another once their lease ends)."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import redis

from arrayq.storage import keys
from arrayq.storage.callback_address import AllowList
from arrayq.storage.jobs import Job
from arrayq.storage.settings import Settings
from arrayq.storage.webhooks import Claimed, Deliveries
from arrayq.worker.periodic import Periodic
from arrayq.worker.webhook_post import backoff_seconds, delivery_headers, next_step, post

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
LEASE_SECONDS = 10.0
RENEW_SECONDS = 2.0
CONCURRENCY = 8


def delivery_body(claimed: Claimed) -> bytes:
    """The job document as it was at the event."""
    return orjson.dumps(Job.from_hash(claimed.record).document())


class WebhookSender(Periodic):
    what = "webhook deliveries"

    def __init__(self, settings: Settings, client: redis.Redis, worker: str) -> None:
        super().__init__(name="arrayq-webhooks")
        assert settings.webhook_secret
        self.secret = settings.webhook_secret
        self.settings = settings
        self.allow = AllowList.parse(settings.webhook_allow_hosts)
        self.deliveries = Deliveries(client)
        self.worker = worker
        self.token = keys.new_id()
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="arrayq-webhook")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._renewed = 0.0

    def interval(self) -> float:
        return POLL_SECONDS

    def step(self) -> None:
        now = time.time()
        with self._lock:
            in_flight, free = list(self._in_flight), CONCURRENCY - len(self._in_flight)
        if in_flight and now - self._renewed >= RENEW_SECONDS:
            self.deliveries.renew(in_flight, self.token, now + LEASE_SECONDS)
            self._renewed = now
        if free <= 0:
            return
        claimed = self.deliveries.claim(
            now=now,
            lease_until=now + LEASE_SECONDS,
            token=self.token,
            worker=self.worker,
            limit=free,
            max_attempts=self.settings.webhook_max_attempts,
        )
        for delivery in claimed:
            with self._lock:
                self._in_flight.add(delivery.id)
            self._pool.submit(self._try, delivery)

    def _try(self, claimed: Claimed) -> None:
        try:
            body = delivery_body(claimed)
            headers = delivery_headers(self.secret, body, claimed.event, claimed.id)
            answer = post(claimed.url, body, headers, self.allow)
            step = next_step(answer, claimed.attempts, self.settings.webhook_max_attempts)
            pause = backoff_seconds(claimed.attempts, self.settings.webhook_retry_seconds)
            if not self.deliveries.finish(claimed, step, answer.status_code, time.time() + pause):
                log.info("webhook %s: lease lost; another worker has it", claimed.id)
            _log_try(claimed, answer.status_code, answer.error, step)
        except Exception:
            log.exception("webhook %s of job %s: try failed", claimed.id, claimed.job_id)
        finally:
            with self._lock:
                self._in_flight.discard(claimed.id)

    def stop(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _log_try(claimed: Claimed, code: int | None, error: str | None, step: str) -> None:
    level = logging.INFO if step == "delivered" else logging.WARNING
    log.log(
        level,
        "webhook %s (job %s, %s) try %d: %s -> %s",
        claimed.id,
        claimed.job_id,
        claimed.event,
        claimed.attempts,
        code if code is not None else error,
        step,
    )
