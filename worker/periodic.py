"""A daemon thread that does one step every few seconds until it is stopped,
and outlives any one bad step: the worker's maintenance sweep and its webhook
deliveries run this way."""

import logging
import threading

from arrayq.storage.errors import ArrayqError

log = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """Subclasses give `interval()` and `step()`; `what` names them in the log."""

    what = "periodic step"

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()

    def interval(self) -> float:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopping.wait(self.interval()):
            try:
                self.step()
            except ArrayqError as exc:  # Redis or the store away: the next step tries again
                log.warning("%s skipped: %s", self.what, exc)
            except Exception:
                log.exception("%s failed", self.what)
