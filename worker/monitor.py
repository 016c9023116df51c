"""Watches one run of a job from a side thread: heartbeat, progress, cancellation.

While the op runs, one watcher thread per process writes a heartbeat (with the
latest progress) to the job record. When the record says the run no longer owns
the job (cancelled, or taken over), it interrupts the op: the progress callback
raises at once, and ops that never call it get `JobCancelled` raised
asynchronously in their thread at the next Python bytecode.
"""

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from arrayq.storage.errors import BrokerUnavailable
from arrayq.storage.jobs import JobStore


class JobCancelled(Exception):
    """The job was cancelled (or taken over by another run) while running."""


class RunMonitor:
    def __init__(self, jobs: JobStore, job_id: str, run_id: str, *, interval: float) -> None:
        self._jobs = jobs
        self._job_id = job_id
        self._run_id = run_id
        self.interval = interval
        self._progress: float | None = None
        self._sent: float | None = None
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._op_thread: int | None = None

    def __enter__(self) -> "RunMonitor":
        _watcher().watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _watcher().unwatch(self)

    def progress(self, fraction: float) -> None:
        """The callback handed to ops."""
        if self.cancelled.is_set():
            raise JobCancelled()
        self._progress = fraction

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Run the op inside this block: a cancel may interrupt it only here."""
        with self._lock:
            self._op_thread = threading.get_ident()
        if self.cancelled.is_set():
            raise JobCancelled()
        try:
            yield
        finally:
            with self._lock:
                self._op_thread = None
                _set_async_exc(threading.get_ident(), None)  # drop one not yet raised

    def tick(self) -> bool:
        """One heartbeat (with new progress); False once the run lost its job."""
        progress = self._progress
        try:
            owned = self._jobs.report(
                self._job_id,
                run_id=self._run_id,
                progress=None if progress == self._sent else progress,
            )
        except BrokerUnavailable:
            return True  # keep running; the heartbeat resumes when Redis is back
        self._sent = progress
        if not owned:
            self._interrupt()
        return owned

    def _interrupt(self) -> None:
        self.cancelled.set()
        with self._lock:
            if self._op_thread is not None:
                _set_async_exc(self._op_thread, JobCancelled)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.c_void_p(0)
    )


class _Watcher(threading.Thread):
    """One thread per process ticks the monitor of the run in progress. Starting
    a thread per run cost a quarter of a short job's time, and a job that ends
    within one interval is never ticked at all."""

    def __init__(self) -> None:
        super().__init__(name="arrayq-monitor", daemon=True)
        self._current: RunMonitor | None = None
        self._changed = threading.Condition()

    def watch(self, monitor: RunMonitor) -> None:
        with self._changed:
            self._current = monitor
            self._changed.notify()

    def unwatch(self, monitor: RunMonitor) -> None:
        with self._changed:
            if self._current is monitor:
                self._current = None
                self._changed.notify()

    def run(self) -> None:
        while True:
            with self._changed:
                while self._current is None:
                    self._changed.wait()
                monitor = self._current
                self._changed.wait(monitor.interval)  # woken early when the run ends
                if self._current is not monitor:
                    continue
            if not monitor.tick():
                self.unwatch(monitor)


_watchers: dict[int, _Watcher] = {}


def _watcher() -> _Watcher:
    """This process's watcher (threads do not survive a fork, so keyed by pid)."""
    pid = os.getpid()
    if pid not in _watchers:
        _watchers.clear()
        _watchers[pid] = _Watcher()
        _watchers[pid].start()
    return _watchers[pid]
