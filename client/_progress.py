"""Rich progress bars for waiting on a job and for downloads, on stderr."""

import contextlib
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


def _console() -> Console:
    return Console(stderr=True)


@contextlib.contextmanager
def job_bar(enabled: bool, job_id: str) -> Iterator[JobUpdate]:
    """A bar fed with job documents: the op, the status and the progress fraction."""
    if not enabled:
        yield lambda document: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_console()) as bar:
        task = bar.add_task(f"{job_id} queued", total=1.0)

        def update(document: dict[str, Any]) -> None:
            done = 1.0 if document["status"] == "succeeded" else document.get("progress") or 0.0
            label = f"{document.get('op', '')} {job_id} {document['status']}".strip()
            bar.update(task, completed=done, description=label)

        yield update


@contextlib.contextmanager
def download_bar(enabled: bool, label: str, total: int | None) -> Iterator[BytesUpdate]:
    """A bar fed with byte counts, showing size, speed and time left."""
    if not enabled:
        yield lambda count: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda count: bar.advance(task, count)
