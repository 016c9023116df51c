"""Waiting out a briefly unreachable object store."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from arrayq.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_unavailable(action: Callable[[], T], delays: tuple[float, ...]) -> T:
    """Call `action`, again after each delay while the store is unavailable;
    the last failure propagates."""
    for delay in delays:
        try:
            return action()
        except StorageUnavailable as exc:
            log.warning("object store unavailable, retrying in %.2f s: %s", delay, exc)
            time.sleep(delay)
    return action()
