"""The peers of section 9 as processes: their own fresh Redis, each peer's workers
(and the template's API), and one driver per peer, all from the peers' venv."""

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arrayq.client.processes import (
    Managed,
    free_port,
    http_answers,
    redis_answers,
    redis_process,
    wait_until,
)
from tests.support.service import REPO_ROOT

PEERS_VENV = Path(__file__).with_name(".peers-venv")
PEERS = ("template", "rq", "arq")
DATABASES = {"template": 0, "rq": 1, "arq": 2}
QUEUE = "bench-peers"  # RQ's queue (bench/peer_apps/clients.py)


def peers_python() -> Path | None:
    python = PEERS_VENV / "bin" / "python"
    return python if python.exists() else None


@dataclass
class Peer:
    """One peer: its workers, its API (the template only) and its driver."""

    name: str
    redis_url: str
    logs: Path
    workers: int
    env: dict[str, str]
    app_url: str | None = None
    running: list[Managed] = field(default_factory=list)
    driver: subprocess.Popen[str] | None = None

    def start_workers(self) -> None:
        for index in range(self.workers):
            log = self.logs / f"{self.name}-worker-{index}.log"
            self.running.append(Managed(self.name, self._worker(index), self.env, log).start())

    def stop_workers(self) -> None:
        for process in self.running:
            process.stop(timeout=15)
        self.running.clear()

    def ask(self, do: str, **request: Any) -> dict[str, Any]:
        """One request to the driver, and its answer (a driver's error is raised here)."""
        assert self.driver and self.driver.stdin and self.driver.stdout
        self.driver.stdin.write(json.dumps({"do": do, **request}) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} driver exited; see {self.logs}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self.name} driver failed:\n{answer['error']}")
        return answer

    def _worker(self, index: int) -> list[str]:
        bin_dir = PEERS_VENV / "bin"
        if self.name == "template":
            # As arrayq's workers: prefork, one process each.
            return [str(bin_dir / "celery"), "-A", "bench.peer_apps.template:celery_app",
                    "worker", "--concurrency=1", "--pool=prefork", "--without-gossip",
                    "--without-mingle", "--loglevel=WARNING",
                    f"--hostname=template{index}-{os.getpid()}@%h"]  # fmt: skip
        if self.name == "rq":
            # RQ's default worker forks a work horse for each job.
            return [str(bin_dir / "rq"), "worker", "--url", self.redis_url,
                    "--logging_level", "WARNING", "--name", f"rq{index}-{os.getpid()}",
                    QUEUE]  # fmt: skip
        return [str(bin_dir / "arq"), "bench.peer_apps.arq_worker.WorkerSettings"]


@contextmanager
def running_peers(workdir: Path, workers: int) -> Iterator[dict[str, Peer]]:
    """A fresh Redis on a free port, every peer's workers and driver, stopped after."""
    python = peers_python()
    if python is None:
        raise RuntimeError(f"no peers venv at {PEERS_VENV}: `make bench-peers-venv`")
    with ExitStack() as stack:
        port = free_port()
        redis = redis_process(port, workdir / "redis").start()
        stack.callback(redis.stop)
        base = f"redis://127.0.0.1:{port}"
        wait_until(lambda: redis_answers(base), 15, "the peers' Redis")
        peers = {}
        for name in PEERS:
            peer = _peer(name, f"{base}/{DATABASES[name]}", workdir, workers)
            stack.callback(peer.stop_workers)
            peer.start_workers()
            if name == "template":
                peer.app_url = _start_template_api(peer, stack)
            peer.driver = _start_driver(python, peer, stack)
            peers[name] = peer
        yield peers


def _peer(name: str, redis_url: str, workdir: Path, workers: int) -> Peer:
    env = {**os.environ, "BENCH_PEER_REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    # Nothing of arrayq's venv may leak into the peers' processes.
    env.pop("VIRTUAL_ENV", None)
    return Peer(name, redis_url, workdir, workers, env)


def _start_template_api(peer: Peer, stack: ExitStack) -> str:
    """The template's API under uvicorn, one process, as `arrayq api` runs."""
    port = free_port()
    argv = [str(PEERS_VENV / "bin" / "uvicorn"), "bench.peer_apps.template:api",
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    api = Managed("template-api", argv, peer.env, peer.logs / "template-api.log").start()
    stack.callback(api.stop)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_answers(f"{url}/docs"), 30, "the template's API")
    return url


def _start_driver(python: Path, peer: Peer, stack: ExitStack) -> subprocess.Popen[str]:
    argv = [str(python), "-m", "bench.peer_apps.driver", peer.name, peer.redis_url]
    argv += [peer.app_url] if peer.app_url else []
    log = (peer.logs / f"{peer.name}-driver.log").open("a")
    stack.callback(log.close)
    driver = subprocess.Popen(argv, env=peer.env, cwd=REPO_ROOT, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=log)  # fmt: skip

    def stop() -> None:
        assert driver.stdin
        driver.stdin.close()
        try:
            driver.wait(15)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait(5)

    stack.callback(stop)
    return driver
