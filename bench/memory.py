"""Resident memory of a process, from /proc/<pid>/status."""

import contextlib
from dataclasses import dataclass
from pathlib import Path

MB = 1e6


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Set the process's VmHWM back to its current VmRSS (Linux >= 4.0); False when
    not allowed, in which case the peak is the one since the process started."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    return False


@dataclass
class PeakWatch:
    """Peak RSS growth of a process over a stretch of work:
    `VmHWM` after it minus `VmRSS` before it."""

    pid: int
    before_kib: int = 0
    peak_kib: int = 0
    exact: bool = True

    def __enter__(self) -> "PeakWatch":
        self.exact = reset_peak(self.pid)
        self.before_kib = status_kib(self.pid, "VmRSS")
        return self

    def __exit__(self, *_: object) -> None:
        self.peak_kib = status_kib(self.pid, "VmHWM")

    @property
    def growth_mb(self) -> float:
        return max(0, self.peak_kib - self.before_kib) * 1024 / MB

    @property
    def peak_mb(self) -> float:
        return self.peak_kib * 1024 / MB
