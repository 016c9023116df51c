"""`pip install arrayq` is the client alone: a fresh venv, a real install of this checkout."""

import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.support.service import REPO_ROOT, Service

SERVER_PACKAGES = ("fastapi", "uvicorn", "celery", "kombu", "redis", "minio", "PIL", "starlette")

LEFT_OUT = (".git", ".venv", ".arrayq", "build", "*.egg-info", "__pycache__", ".*_cache")

PROBE = """
import importlib.util, json, sys
import arrayq
from arrayq import AsyncClient, Client, Job, JobFailed, NotFound
server = {SERVER!r}
with Client({URL!r}) as client:
    value = client.submit("matmul", a=[[1.0, 2.0]], b=[[3.0], [4.0]]).result().tolist()
print(json.dumps({{
    "installed": [name for name in server if importlib.util.find_spec(name) is not None],
    "imported": sorted(name for name in server if name in sys.modules),
    "value": value,
}}))
"""


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("light")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    # A real (not editable) install from a copy: pip builds in the source tree, and the
    # checkout's own folders must not be what the probe imports.
    source = root / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*LEFT_OUT))
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        check=True,
        cwd=root,
        timeout=600,
    )
    return root / "venv"


def test_base_install_has_no_server_package_and_runs_a_job(
    light_venv: Path, service: Service
) -> None:
    probe = PROBE.format(SERVER=SERVER_PACKAGES, URL=service.url)
    done = subprocess.run(
        [light_venv / "bin" / "python", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=light_venv,
        timeout=120,
    )
    found = json.loads(done.stdout)
    assert found == {"installed": [], "imported": [], "value": [[11.0]]}


def test_only_arrayq_lands_at_the_top_of_site_packages(light_venv: Path) -> None:
    site = next((light_venv / "lib").glob("python3*/site-packages"))
    record = next(site.glob("arrayq-*.dist-info")) / "RECORD"
    paths = [line.split(",", 1)[0] for line in record.read_text().splitlines()]
    tops = {path.split("/", 1)[0] for path in paths if not path.startswith("..")}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"arrayq"}
    assert (site / "arrayq" / "api" / "static" / "dashboard.js").is_file()


@pytest.mark.parametrize("command", ["api", "worker", "up"])
def test_server_commands_exit_2_naming_the_extra(light_venv: Path, command: str) -> None:
    done = subprocess.run(
        [light_venv / "bin" / "arrayq", command],
        capture_output=True,
        text=True,
        cwd=light_venv,
        timeout=60,
    )
    assert done.returncode == 2
    assert "arrayq[server]" in done.stderr


def test_client_commands_work_without_the_server_extra(light_venv: Path, service: Service) -> None:
    done = subprocess.run(
        [light_venv / "bin" / "arrayq", "--url", service.url, "ops"],
        capture_output=True,
        text=True,
        cwd=light_venv,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "matmul" in done.stdout
