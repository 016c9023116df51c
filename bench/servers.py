"""The other servers the transfer benchmarks compare against: nginx and the compare app."""

import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from arrayq.client.processes import Managed, free_port, wait_until

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {state}/error.log warn;
pid {state}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile {sendfile};
    output_buffers 2 4m;
    tcp_nopush on;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@dataclass
class Server:
    url: str
    process: Managed

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop(timeout=10)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None


def start_nginx(root: Path, state: Path, *, sendfile: bool = True) -> Server | None:
    """nginx serving the files under `root`, with sendfile or else with read/write
    through 4 MiB buffers; None when nginx is missing."""
    binary = nginx_binary()
    if binary is None:
        return None
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = state / "nginx.conf"
    switch = "on" if sendfile else "off"
    config.write_text(NGINX_CONF.format(state=state, port=port, root=root, sendfile=switch))
    argv = [binary, "-c", str(config), "-p", str(state), "-e", str(state / "error.log")]
    process = Managed("nginx", argv, log_path=state / "nginx.log").start()
    return _ready(Server(f"http://127.0.0.1:{port}", process), port)


def start_compare_app(root: Path, logs: Path) -> Server:
    """The app of `bench.compare_app` under uvicorn, as `arrayq api` runs (uvloop, httptools)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.compare_app:app", "--port", str(port)]
    argv += ["--log-level", "warning"]
    env = {**os.environ, "BENCH_COMPARE_ROOT": str(root)}
    process = Managed("compare-app", argv, env=env, log_path=logs / "compare-app.log").start()
    return _ready(Server(f"http://127.0.0.1:{port}", process), port)


def _ready(server: Server, port: int) -> Server:
    try:
        wait_until(lambda: _listening(port) or _died(server), 30, server.process.name)
    except BaseException:
        server.stop()
        raise
    return server


def _died(server: Server) -> bool:
    if server.process.alive():
        return False
    log = server.process.log_path
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{server.process.name} exited at start:\n{tail}")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
