"""The commands docker-compose.yml runs for `createbucket`, `api` and two `worker`s,
read from the file and run as local processes against a private Redis and
SeaweedFS: what the containers would do, minus Docker."""

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from arrayq.client.processes import (
    Managed,
    free_port,
    http_answers,
    redis_answers,
    redis_process,
    wait_until,
    workers_ready,
)
from tests.support.compose import compose_command, compose_environment
from tests.support.jobs import result_array, run

pytestmark = pytest.mark.s3


def local_argv(argv: list[str], port: int | None = None) -> list[str]:
    """The container's argv for this machine: its programs from this virtualenv and,
    since containers do not share ports, the API on a free one."""
    programs = {"arrayq": str(Path(sys.executable).parent / "arrayq"), "python": sys.executable}
    argv = [programs.get(argv[0], argv[0]), *argv[1:]]
    if port is not None:
        argv[argv.index("--port") + 1] = str(port)
    return argv


@pytest.fixture(scope="module")
def compose_stack(tmp_path_factory, s3_server) -> Iterator[str]:
    root = tmp_path_factory.mktemp("compose")
    redis_port, api_port = free_port(), free_port()
    variables = {
        "ARRAYQ_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ARRAYQ_STORAGE_URL": s3_server.url("compose-bucket"),
        "ARRAYQ_S3_PUBLIC_ENDPOINT": s3_server.endpoint,
    }
    env = {"PATH": str(Path(sys.executable).parent), **compose_environment("api", variables)}
    redis = redis_process(redis_port, root / "redis").start()
    processes = [redis]
    try:
        wait_until(lambda: redis_answers(variables["ARRAYQ_REDIS_URL"]), 15, "Redis")
        bucket = Managed(
            "createbucket", local_argv(compose_command("createbucket", variables)), env
        )
        assert bucket.start().popen.wait(60) == 0
        worker_argv = local_argv(compose_command("worker", variables))
        processes += [
            Managed("worker", worker_argv, env, root / f"w{i}.log").start() for i in (0, 1)
        ]
        api_argv = local_argv(compose_command("api", variables), port=api_port)
        processes.append(Managed("api", api_argv, env, root / "api.log").start())
        url = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: http_answers(f"{url}/readyz"), 30, "the API")
        wait_until(lambda: workers_ready(variables["ARRAYQ_REDIS_URL"], 2), 60, "the workers")
        yield url
    finally:
        for process in reversed(processes):
            process.stop(timeout=15)


def test_a_job_runs_through_the_compose_commands(compose_stack):
    with httpx.Client(base_url=compose_stack, timeout=30, follow_redirects=True) as http:
        a = np.arange(6.0).reshape(2, 3)
        job = run(http, "matmul", a=a, b=a.T)
        np.testing.assert_array_equal(result_array(http, job["id"]), a @ a.T)
        npy = http.get(f"/jobs/{job['id']}/result?format=npy")
        assert npy.status_code == 200 and npy.headers["content-type"] == "application/x-npy"


def test_the_bucket_was_created_before_the_api(compose_stack, s3_server):
    assert s3_server.client().bucket_exists(bucket_name="compose-bucket")
