"""A webhook receiver on loopback for the tests: a threaded http.server that
records every POST and answers each path from a script of status codes."""

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = -1  # in a script: hold the request until `release()`, then answer 200


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.scripts: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.released = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *codes: int) -> str:
        """Answer the POSTs to `path` with these codes in turn (the last one repeats)."""
        self.scripts[path] = list(codes)
        return self.url(path)

    def requests(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_requests(self, path: str, count: int, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(found := self.requests(path)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} POSTs to {path} in {timeout} s")
            time.sleep(0.05)
        return found

    def next_code(self, path: str) -> int:
        with self.lock:
            script = self.scripts.get(path) or [200]
            return script.pop(0) if len(script) > 1 else script[0]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append(
                Received(self.path, dict(self.headers.items()), body, time.monotonic())
            )
        code = self.server.next_code(self.path)
        if code == HANG:
            self.server.released.wait(60)
            code = 200
        with contextlib.suppress(OSError):  # a held request's sender may be dead by now
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
