"""The client commands of `arrayq`, through typer's runner and as real subprocesses,
against the real service."""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from arrayq.client.cli import app
from tests.support.service import REPO_ROOT, Service, start_service

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
runner = CliRunner()


def invoke(service: Service, *args: str) -> Result:
    return runner.invoke(app, ["--url", service.url, *args])


def submitted_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    job_id = result.stdout.splitlines()[0]
    assert JOB_ID.match(job_id), result.stdout
    return job_id


def save(tmp_path: Path, name: str, array: np.ndarray) -> str:
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    return f"{name}=@{path}"


# through typer's runner


def test_ops_prints_a_table(service: Service) -> None:
    result = invoke(service, "ops")
    assert result.exit_code == 0, result.output
    assert "matmul" in result.stdout and "mandelbrot" in result.stdout


def test_submit_wait_status_and_get(service: Service, tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.arange(12, dtype=np.int64).reshape(3, 4)
    result = invoke(
        service, "submit", "matmul", "--input", save(tmp_path, "a", a), "-i", save(tmp_path, "b", b)
    )
    job_id = submitted_id(result)
    assert invoke(service, "wait", job_id).exit_code == 0
    status = invoke(service, "status", job_id)
    assert status.exit_code == 0
    assert json.loads(status.stdout)["status"] == "succeeded"
    out = tmp_path / "out.npy"
    got = invoke(service, "get", job_id, "-o", str(out))
    assert got.exit_code == 0, got.output
    np.testing.assert_array_equal(np.load(out, allow_pickle=False), a @ b)


def test_submit_with_params_and_wait(service: Service, tmp_path: Path) -> None:
    result = invoke(
        service,
        "submit",
        "random",
        "--param",
        "shape=[3, 4]",
        "-p",
        "seed=5",
        "-p",
        "dtype=float32",
        "--wait",
    )
    job_id = submitted_id(result)
    assert "succeeded" in result.stderr
    got = invoke(service, "get", job_id, "-o", str(tmp_path / "r.npy"))
    assert got.exit_code == 0, got.output
    expected = np.random.default_rng(5).standard_normal((3, 4), dtype=np.float32)
    assert np.load(tmp_path / "r.npy", allow_pickle=False).tobytes() == expected.tobytes()


def test_get_png_of_an_image(service: Service, tmp_path: Path) -> None:
    params = ["-p", "width=48", "-p", "height=32", "-p", "max_iter=10"]
    job_id = submitted_id(invoke(service, "submit", "mandelbrot", *params, "--wait"))
    got = invoke(service, "get", job_id, "--output", str(tmp_path / "m.png"))
    assert got.exit_code == 0, got.output
    with Image.open(tmp_path / "m.png") as image:
        assert image.size == (48, 32)


def test_get_without_a_file_prints_a_small_result(service: Service) -> None:
    inputs = ["-i", "a=[[1, 2], [3, 4]]", "-i", "b=[[1, 0], [0, 10]]"]
    job_id = submitted_id(invoke(service, "submit", "matmul", *inputs, "--wait"))
    got = invoke(service, "get", job_id)
    assert got.exit_code == 0, got.output
    assert got.stdout.strip() == "[[ 1, 20],\n [ 3, 40]]"


def test_get_prints_a_slice_and_refuses_a_large_result(service: Service) -> None:
    params = ["-p", "shape=[100, 50]", "-p", "seed=2", "--wait"]
    job_id = submitted_id(invoke(service, "submit", "random", *params))
    refused = invoke(service, "get", job_id)
    assert refused.exit_code == 2
    assert "5000 values" in refused.stderr and "-o" in refused.stderr
    got = invoke(service, "get", job_id, "--slice", "0, 0:3")
    assert got.exit_code == 0, got.output
    expected = np.random.default_rng(2).standard_normal((100, 50))[0, 0:3]
    printed = np.array(json.loads(got.stdout))  # shortest exact digits: they round-trip
    assert printed.tobytes() == expected.tobytes()


def test_global_options_after_the_command(service: Service, tmp_path: Path) -> None:
    result = runner.invoke(app, ["submit", "svd", "-i", "x=[[1, 0], [0, 1]]", "--url", service.url])
    job_id = submitted_id(result)
    assert runner.invoke(app, ["wait", job_id, "--url", service.url]).exit_code == 0
    got = runner.invoke(app, ["get", job_id, "-o", str(tmp_path / "s.npy"), "--url", service.url])
    assert got.exit_code == 0, got.output
    assert np.load(tmp_path / "s.npy").tolist() == [1.0, 1.0]


def test_a_url_after_the_command_wins_over_one_before(service: Service) -> None:
    result = runner.invoke(app, ["--url", "http://127.0.0.1:9", "ops", "--url", service.url])
    assert result.exit_code == 0, result.output
    assert "matmul" in result.stdout


def test_ops_shows_defaults_and_constraints(service: Service) -> None:
    result = invoke(service, "ops")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "1 <= width <= 8192" in text
    assert "sigma=1.0 (0 < sigma <= 100)" in text
    assert "seconds (required; 0 <= seconds <= 3600)" in text


def test_cancel_of_a_finished_job_leaves_it_and_delete_removes_it(service: Service) -> None:
    job_id = submitted_id(invoke(service, "submit", "svd", "-i", "x=[[1, 0], [0, 1]]", "--wait"))
    cancelled = invoke(service, "cancel", job_id)
    assert cancelled.exit_code == 0
    assert cancelled.stdout.strip() == f"{job_id} had already succeeded: nothing to cancel"
    assert json.loads(invoke(service, "status", job_id).stdout)["status"] == "succeeded"
    deleted = invoke(service, "delete", job_id)
    assert (deleted.exit_code, deleted.stdout.strip()) == (0, f"deleted {job_id}")
    assert invoke(service, "status", job_id).exit_code == 1


def test_cancel_then_wait_exits_1(service: Service) -> None:
    job_id = submitted_id(invoke(service, "submit", "sleep", "-p", "seconds=60"))
    cancelled = invoke(service, "cancel", job_id)
    assert cancelled.exit_code == 0
    assert cancelled.stdout.strip() == f"cancelled {job_id}"
    waited = invoke(service, "wait", job_id)
    assert waited.exit_code == 1
    assert "cancelled" in waited.stderr


def test_failed_job_exits_1_with_the_error(service: Service) -> None:
    result = invoke(service, "submit", "fail", "-p", "message=cli says no", "--wait")
    assert result.exit_code == 1
    assert "cli says no" in result.stderr
    job_id = result.stdout.splitlines()[0]
    assert invoke(service, "wait", job_id).exit_code == 1


def test_jobs_table_lists_recent_jobs(service: Service) -> None:
    job_id = submitted_id(invoke(service, "submit", "svd", "-i", "x=[[2, 0], [0, 1]]", "--wait"))
    listed = invoke(service, "jobs", "--op", "svd", "--status", "succeeded", "--limit", "5")
    assert listed.exit_code == 0, listed.output
    assert job_id in listed.stdout
    assert "float64 (2,)" in listed.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "matmul", "--param", "no-equals-sign"],
        ["submit", "matmul", "--input", "a=@/no/such/file.npy"],
        ["submit", "no_such_op"],
        ["submit", "random", "-p", "shape=not-a-shape"],
        ["jobs", "--limit", "0"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(service: Service, args: list[str]) -> None:
    assert invoke(service, *args).exit_code == 2


def test_unknown_job_exits_1(service: Service) -> None:
    result = invoke(service, "status", "0" * 32)
    assert result.exit_code == 1
    assert "not_found" in result.stderr


def test_url_from_the_environment(service: Service) -> None:
    result = runner.invoke(app, ["ops"], env={"ARRAYQ_URL": service.url})
    assert result.exit_code == 0, result.output
    assert "matmul" in result.stdout


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(
        tmp_path_factory.mktemp("cli-keys"),
        workers=1,
        extra_env={"ARRAYQ_API_KEYS": "cli-key:tenant-cli,other-key:tenant-other"},
    )
    try:
        yield running
    finally:
        running.stop()


def test_api_key_before_or_after_the_command(keyed_service: Service) -> None:
    url = keyed_service.url
    refused = runner.invoke(app, ["--url", url, "ops"])
    assert refused.exit_code == 1 and "unauthorized" in refused.stderr
    wrong = runner.invoke(app, ["ops", "--url", url, "--api-key", "nope"])
    assert wrong.exit_code == 1 and "unauthorized" in wrong.stderr
    before = ["--url", url, "--api-key", "cli-key", "submit", "scale", "-i", "x=[0.5, 1]"]
    job_id = submitted_id(runner.invoke(app, [*before, "--wait"]))
    after = runner.invoke(app, ["get", job_id, "--url", url, "--api-key", "cli-key"])
    assert after.exit_code == 0, after.output
    assert after.stdout.strip() == "[1., 2.]"
    other = runner.invoke(app, ["status", job_id, "--url", url, "--api-key", "other-key"])
    assert other.exit_code == 1 and "not_found" in other.stderr


def test_api_key_from_the_environment_in_a_subprocess(keyed_service: Service) -> None:
    env = {**keyed_service.env, "ARRAYQ_URL": keyed_service.url, "ARRAYQ_API_KEY": "cli-key"}
    listed = subprocess.run(
        [sys.executable, "-m", "arrayq.client.cli", "jobs"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr


# as real subprocesses


def arrayq(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**service.env, "ARRAYQ_URL": service.url}
    env.pop("ARRAYQ_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "arrayq.client.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_subprocess_submit_wait_get_status_jobs(service: Service, tmp_path: Path) -> None:
    x = np.linspace(0, 1, 12).reshape(3, 4)
    np.save(tmp_path / "x.npy", x)
    submitted = arrayq(
        service, "submit", "scale", "-p", "factor=4", "-i", f"x=@{tmp_path / 'x.npy'}", "--wait"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert JOB_ID.match(job_id)

    got = arrayq(service, "get", job_id, "-o", str(tmp_path / "scaled.npy"))
    assert got.returncode == 0, got.stderr
    assert np.load(tmp_path / "scaled.npy", allow_pickle=False).tobytes() == (x * 4).tobytes()

    status = arrayq(service, "status", job_id)
    assert json.loads(status.stdout)["result"]["shape"] == [3, 4]

    listed = arrayq(service, "jobs", "--op", "scale")
    assert listed.returncode == 0 and job_id in listed.stdout


def test_subprocess_cancel_and_exit_codes(service: Service) -> None:
    job_id = arrayq(service, "submit", "sleep", "-p", "seconds=60").stdout.strip()
    assert JOB_ID.match(job_id)
    assert arrayq(service, "cancel", job_id).returncode == 0
    waited = arrayq(service, "wait", job_id)
    assert waited.returncode == 1
    assert "cancelled" in waited.stderr
    assert arrayq(service, "submit", "solve", "-i", "a=[[0, 0], [0, 0]]", "-i", "b=[1, 1]",
                  "--wait").returncode == 1  # fmt: skip
    assert arrayq(service, "submit", "random", "--param", "shape").returncode == 2
