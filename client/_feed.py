"""Items of a blocking iterator, read in a thread so that waiting for the next
one can end at a deadline. A blocking socket read cannot be interrupted, and
its read timeout restarts at each keep-alive, so it cannot end a wait on time."""

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class FeedError(Exception):
    """The iterator raised; the cause is attached."""


class FeedTimeout(Exception):
    """No item came before the timeout."""


_END = object()


class ThreadFeed(Generic[T]):
    """`items` is read in a daemon thread, which stops (and closes a generator)
    at the first item after `stop()`."""

    def __init__(self, items: Iterator[T]) -> None:
        self._items: queue.Queue[object] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True)
        self._thread.start()

    def _run(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if self._stop.is_set():
                    return
                self._items.put(item)
        except Exception as exc:  # handed to the consumer, which decides
            self._items.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self._items.put(_END)

    def next(self, timeout: float | None) -> T | None:
        """The next item; None once the source is exhausted."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            raise FeedTimeout from None
        if item is _END:
            return None
        if isinstance(item, Exception):
            raise FeedError from item
        return item  # type: ignore[return-value]

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> "ThreadFeed[T]":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
