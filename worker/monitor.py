"""Watches one run of a job from a side thread: heartbeat, progress, cancellation.

While the op runs, the monitor writes a heartbeat (with the latest progress) to
the job record. When the record says the run no longer owns the job (cancelled,
or taken over), it interrupts the op: the progress callback raises at once, and
ops that never call it get `JobCancelled` raised asynchronously in their thread
at the next Python bytecode.
"""

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from storage.errors import BrokerUnavailable
from storage.jobs import JobStore


class JobCancelled(Exception):
    """The job was cancelled (or taken over by another run) while running."""


class RunMonitor:
    def __init__(self, jobs: JobStore, job_id: str, run_id: str, *, interval: float) -> None:
        self._jobs = jobs
        self._job_id = job_id
        self._run_id = run_id
        self._interval = interval
        self._progress: float | None = None
        self._stop = threading.Event()
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._op_thread: int | None = None
        self._thread = threading.Thread(target=self._watch, name="arrayq-monitor", daemon=True)

    def __enter__(self) -> "RunMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

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

    def _watch(self) -> None:
        sent: float | None = None
        while not self._stop.wait(self._interval):
            progress = self._progress
            try:
                owned = self._jobs.report(
                    self._job_id,
                    run_id=self._run_id,
                    progress=None if progress == sent else progress,
                )
            except BrokerUnavailable:
                continue  # keep running; the heartbeat resumes when Redis is back
            sent = progress
            if not owned:
                self._interrupt()
                return

    def _interrupt(self) -> None:
        self.cancelled.set()
        with self._lock:
            if self._op_thread is not None:
                _set_async_exc(self._op_thread, JobCancelled)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.c_void_p(0)
    )
