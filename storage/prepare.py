"""`python -m arrayq.storage.prepare`: create the bucket (and its expiry rule) before
the API starts, waiting for the store to come up. The compose file's one-shot
`createbucket` service runs it."""

import logging
import sys
import time
from datetime import timedelta

from arrayq.storage.errors import StorageUnavailable
from arrayq.storage.settings import get_settings
from arrayq.storage.stores import store_from_settings

log = logging.getLogger("arrayq.prepare")


def prepare(attempts: int = 60, delay: float = 2.0) -> None:
    settings = get_settings()
    store = store_from_settings(settings)
    for attempt in range(1, attempts + 1):
        try:
            store.prepare(timedelta(seconds=settings.result_ttl_seconds))
            log.info("object store ready")
            return
        except StorageUnavailable as exc:
            log.warning("waiting for the object store (%d/%d): %s", attempt, attempts, exc)
            time.sleep(delay)
    sys.exit("the object store never answered")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    prepare()
