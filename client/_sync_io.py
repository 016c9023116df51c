"""What the synchronous client does differently from the asynchronous one, in
the functions that `_async_io.py` has too, by the same names (see `_unasync.py`)."""

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from arrayq.client._feed import FeedError, FeedTimeout, ThreadFeed

T = TypeVar("T")


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def body(chunks: Iterable[Any]) -> Iterable[Any]:
    return chunks


def drain(items: Iterator[T], take: Callable[[T], bool], timeout: float | None) -> bool:
    """Hand each item to `take` until it returns True (then True) or the items
    end (then False); `TimeoutError` after `timeout` seconds. The items are read
    in a thread: a blocking socket read cannot be ended at a deadline."""
    end = None if timeout is None else time.monotonic() + timeout
    with ThreadFeed(items) as feed:
        try:
            while (item := feed.next(_left(end))) is not None:
                if take(item):
                    return True
        except FeedTimeout:
            raise TimeoutError from None
        except FeedError as exc:
            raise exc.__cause__ from None  # type: ignore[misc]
    return False


def _left(end: float | None) -> float | None:
    return None if end is None else max(0.0, end - time.monotonic())
