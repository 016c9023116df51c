"""The worker healthcheck of docker-compose.yml, run for real: it asks the workers of this
host, over the broker, and nothing else."""

import os
import subprocess
import sys
import time

from arrayq.client.processes import free_port
from tests.support.compose import REPO_ROOT, compose_service
from tests.support.service import Service

SCRIPT = REPO_ROOT / "deploy" / "worker_health.py"
IN_IMAGE = "/usr/local/lib/arrayq/worker_health.py"
PROBE = [sys.executable, str(SCRIPT)]


def _probe(redis_url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "ARRAYQ_REDIS_URL": redis_url}
    started = time.monotonic()
    done = subprocess.run(PROBE, env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def test_compose_worker_healthcheck_is_the_probe() -> None:
    test = compose_service("worker")["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[1:] == ["python", IN_IMAGE]
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert f"COPY deploy/worker_health.py {IN_IMAGE}" in dockerfile
    assert "!deploy/worker_health.py" in (REPO_ROOT / ".dockerignore").read_text().splitlines()


def test_healthy_while_this_hosts_worker_answers_over_the_broker(service: Service) -> None:
    done, _ = _probe(service.redis_url)
    assert done.returncode == 0, done.stderr


def test_unhealthy_when_no_worker_of_this_host_listens_on_that_broker(service: Service) -> None:
    other_db = service.redis_url.rpartition("/")[0] + "/9"  # same Redis, no worker consumes it
    done, seconds = _probe(other_db)
    assert done.returncode == 1
    assert "no worker" in done.stderr
    assert seconds < 20


def test_unhealthy_when_the_broker_cannot_be_reached() -> None:
    done, seconds = _probe(f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1
    assert "unhealthy" in done.stderr
    assert seconds < 20
