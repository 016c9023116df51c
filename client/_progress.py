"""Progress of a job and of a download, where the user is: a live rich bar on a
terminal, a display updated in place in Jupyter, plain lines on stderr otherwise
(a log, a pipe, CI)."""

import contextlib
import io
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

JobUpdate = Callable[[dict[str, Any]], None]
BytesUpdate = Callable[[int], None]
# Plain lines: one per status change, and one per this much progress.
LINE_STEP = 0.1
# Jupyter: at most this many display updates a second.
NOTEBOOK_UPDATES_PER_SECOND = 10


def _console() -> Console:
    return Console(stderr=True)


def _job_columns() -> tuple[Any, ...]:
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )


def _download_columns() -> tuple[Any, ...]:
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )


def job_state(document: dict[str, Any], job_id: str) -> tuple[str, float]:
    """The label and the completed fraction of a job document."""
    done = 1.0 if document["status"] == "succeeded" else float(document.get("progress") or 0.0)
    return f"{document.get('op', '')} {job_id} {document['status']}".strip(), done


@contextlib.contextmanager
def job_bar(enabled: bool, job_id: str) -> Iterator[JobUpdate]:
    """A bar fed with job documents: the op, the status and the progress fraction."""
    if not enabled:
        yield lambda document: None
        return
    with _bar(_job_columns(), f"{job_id} queued", 1.0) as (update, _):

        def show(document: dict[str, Any]) -> None:
            label, done = job_state(document, job_id)
            update(label, done)

        yield show


@contextlib.contextmanager
def download_bar(enabled: bool, label: str, total: int | None) -> Iterator[BytesUpdate]:
    """A bar fed with byte counts, showing size, speed and time left."""
    if not enabled:
        yield lambda count: None
        return
    with _bar(_download_columns(), label, total) as (_, advance):
        yield advance


Updates = tuple[Callable[[str, float], None], Callable[[int], None]]


@contextlib.contextmanager
def _bar(columns: tuple[Any, ...], label: str, total: float | None) -> Iterator[Updates]:
    console = _console()
    if console.is_jupyter:
        with _notebook_bar(columns, label, total) as updates:
            yield updates
    elif console.is_terminal:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(label, total=total)
            yield (
                lambda text, done: bar.update(task, description=text, completed=done),
                lambda count: bar.advance(task, count),
            )
    else:
        with _line_bar(label, total) as updates:
            yield updates


@contextlib.contextmanager
def _notebook_bar(columns: tuple[Any, ...], label: str, total: float | None) -> Iterator[Updates]:
    """Rich's bar rendered to HTML in one output of the cell, updated in place
    (a display id: no widget extension needed)."""
    from IPython.display import display

    # Consoles made in a kernel print to the notebook themselves unless told not to.
    quiet = Console(file=io.StringIO(), force_jupyter=False)
    bar = Progress(*columns, auto_refresh=False, console=quiet)
    task = bar.add_task(label, total=total)
    handle = display(_rendered(bar), raw=True, display_id=True)
    last = 0.0

    def refresh(force: bool = False) -> None:
        nonlocal last
        now = time.monotonic()
        if force or now - last >= 1 / NOTEBOOK_UPDATES_PER_SECOND:
            last = now
            handle.update(_rendered(bar), raw=True)

    def update(text: str, done: float) -> None:
        bar.update(task, description=text, completed=done)
        refresh()

    def advance(count: int) -> None:
        bar.advance(task, count)
        refresh()

    try:
        yield update, advance
    finally:
        refresh(force=True)


def _rendered(bar: Progress) -> dict[str, str]:
    console = Console(
        record=True, file=io.StringIO(), width=100, force_terminal=True, force_jupyter=False
    )
    console.print(bar.make_tasks_table(bar.tasks))
    text = console.export_text(clear=False)
    page = console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")
    return {"text/plain": text, "text/html": page}


@contextlib.contextmanager
def _line_bar(label: str, total: float | None) -> Iterator[Updates]:
    """Plain lines on stderr: for a job one per new label and per tenth of the
    way, for a download one at the end."""
    state = {"label": "", "step": -1, "bytes": 0}
    started = time.monotonic()

    def update(text: str, done: float) -> None:
        step = int(done / LINE_STEP) if total else 0
        if text != state["label"] or step > state["step"]:
            state.update(label=text, step=step)
            _line(f"{text} {100 * done / (total or 1):.0f}%")

    def advance(count: int) -> None:
        state["bytes"] += count

    try:
        yield update, advance
    finally:
        if state["bytes"]:
            seconds = time.monotonic() - started
            _line(f"{label} {state['bytes']} bytes in {seconds:.1f} s")


def _line(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
