"""`arrayq up`: everything on one machine, stopped cleanly by Ctrl-C."""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from arrayq.client.processes import (
    Managed,
    arrayq_command,
    free_port,
    http_answers,
    redis_answers,
    redis_process,
    wait_until,
    workers_ready,
)

STATE_DIR = Path(".arrayq")


def run_up(*, workers: int, port: int, host: str, echo: Callable[[str], None] = print) -> None:
    env = dict(os.environ)
    env.setdefault("ARRAYQ_STORAGE_URL", f"file://{(STATE_DIR / 'data').resolve()}")
    started: list[Managed] = []
    try:
        if not env.get("ARRAYQ_REDIS_URL"):
            redis_port = free_port()
            started.append(redis_process(redis_port, (STATE_DIR / "redis").resolve()).start())
            env["ARRAYQ_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            wait_until(lambda: redis_answers(env["ARRAYQ_REDIS_URL"]), 15, "Redis")
            echo(f"Redis        {env['ARRAYQ_REDIS_URL']} (data in {STATE_DIR}/redis)")
        logs = (STATE_DIR / "logs").resolve()
        logs.mkdir(parents=True, exist_ok=True)
        for index in range(workers):
            worker = Managed("worker", arrayq_command("worker"), env, logs / f"worker-{index}.log")
            started.append(worker.start())
        api_argv = arrayq_command("api", "--host", host, "--port", str(port))
        started.append(Managed("api", api_argv, env, logs / "api.log").start())
        wait_until(lambda: http_answers(f"http://127.0.0.1:{port}/healthz"), 30, "the API")
        wait_until(lambda: workers_ready(env["ARRAYQ_REDIS_URL"], workers), 60, "the workers")
        echo(f"Storage      {env['ARRAYQ_STORAGE_URL']}")
        echo(f"Workers      {workers}")
        echo(f"Logs         {STATE_DIR}/logs/")
        echo(f"API          http://{host}:{port}")
        echo(f"Docs         http://{host}:{port}/docs")
        echo("Press Ctrl-C to stop.")
        _wait_for_signal_or_exit(started)
    finally:
        echo("Stopping...")
        _stop_in_order(started)


def _wait_for_signal_or_exit(processes: list[Managed]) -> None:
    stop = {"requested": False}

    def request_stop(signum: int, frame: object) -> None:
        stop["requested"] = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop["requested"]:
            dead = [process.name for process in processes if not process.alive()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} stopped unexpectedly")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_in_order(processes: list[Managed]) -> None:
    """API first (no new jobs), then workers (warm shutdown), Redis last."""
    order = {"api": 0, "worker": 1, "redis": 2}
    for process in sorted(processes, key=lambda p: order.get(p.name, 1)):
        process.stop(timeout=30)
