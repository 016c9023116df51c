"""nginx in front of an arrayq API, sending local results itself through
`X-Accel-Redirect` (the layout of deploy/nginx.conf), and a second API process
on a running service's Redis and storage with other settings."""

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from arrayq.client.processes import Managed, arrayq_command, free_port, http_answers, wait_until
from tests.support.service import Service

ACCEL_PREFIX = "/_arrayq_store/"

FRONT_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {state}/error.log warn;
pid {state}/nginx.pid;
events {{ worker_connections 256; }}
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
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location {prefix} {{
            internal;
            alias {storage}/;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{api_port};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


@dataclass
class Front:
    url: str
    process: Managed

    def stop(self) -> None:
        self.process.stop(timeout=10)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None


def start_api(service: Service, log_path: Path, extra_env: dict[str, str]) -> Front:
    """Another API process of `service` (same Redis and storage), other settings."""
    port = free_port()
    env = {**service.env, **extra_env}
    process = Managed(
        "api-2", arrayq_command("api", "--port", str(port)), env=env, log_path=log_path
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_answers(f"{url}/healthz"), 30, "the second API")
    except BaseException:
        process.stop(timeout=10)
        raise
    return Front(url, process)


def start_front(
    state: Path, api_url: str, storage_root: Path, *, sendfile: bool = True
) -> Front | None:
    """nginx proxying to `api_url`, with the internal location of ACCEL_PREFIX
    aliased to the storage folder; None when nginx is missing."""
    binary = nginx_binary()
    if binary is None:
        return None
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = state / "nginx.conf"
    config.write_text(
        FRONT_CONF.format(
            state=state,
            port=port,
            prefix=ACCEL_PREFIX,
            storage=storage_root.resolve(),
            api_port=api_url.rsplit(":", 1)[1],
            sendfile="on" if sendfile else "off",
        )
    )
    argv = [binary, "-c", str(config), "-p", str(state), "-e", str(state / "error.log")]
    process = Managed("nginx-front", argv, log_path=state / "nginx.log").start()
    front = Front(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: _listening(port) or not _alive(front, state), 30, "nginx")
    except BaseException:
        front.stop()
        raise
    return front


def _alive(front: Front, state: Path) -> bool:
    if front.process.alive():
        return True
    raise RuntimeError("nginx exited at start:\n" + (state / "error.log").read_text()[-2000:])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
