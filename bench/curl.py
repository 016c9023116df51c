"""Transfers timed by curl, so that the client's own cost stays small and alike for
every server (a Python client would measure itself as much as the server)."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_TIMED_OUT = 28
_WRITE_OUT = "%{http_code} %{size_download} %{size_upload} %{time_total}"


@dataclass(frozen=True)
class Transfer:
    status: int
    downloaded: int
    uploaded: int
    seconds: float

    @property
    def rate_mb(self) -> float:
        return max(self.downloaded, self.uploaded) / self.seconds / 1e6


def curl_binary() -> str:
    found = shutil.which("curl")
    if not found:
        raise FileNotFoundError("curl is needed for the transfer benchmarks")
    return found


def download(
    url: str, *, follow_redirects: bool = False, max_seconds: float | None = None
) -> Transfer:
    """GET `url` into /dev/null; with `max_seconds`, stop then and report what arrived."""
    options = ["--location"] if follow_redirects else []
    if max_seconds is not None:
        options += ["--max-time", str(max_seconds)]
    return _run([*options, url])


def upload(url: str, path: Path, *, content_type: str = "application/octet-stream") -> Transfer:
    """POST the file at `path` as a streamed body (`--upload-file` never holds it whole)."""
    headers = ["--header", f"Content-Type: {content_type}", "--header", "Expect:"]
    return _run(["--request", "POST", "--upload-file", str(path), *headers, url])


def _run(arguments: list[str]) -> Transfer:
    argv = [curl_binary(), "--silent", "--show-error", "--output", "/dev/null"]
    argv += ["--write-out", _WRITE_OUT, *arguments]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode not in (0, _TIMED_OUT):
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr.strip()}")
    status, downloaded, uploaded, seconds = done.stdout.split()
    return Transfer(int(status), int(downloaded), int(uploaded), float(seconds))
