import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import NoReturn

import pytest

from arrayq.client.processes import free_port
from tests.deploy.engine import REQUIRED_VARIABLE, Engine, EngineUnavailable, docker_engine
from tests.deploy.project import Project, provide_images

FIGURES = pytest.StashKey[dict[str, str]]()


def unavailable(reason: str) -> NoReturn:
    """Skip, except where the test is required (CI): there a missing engine fails."""
    if os.environ.get(REQUIRED_VARIABLE):
        pytest.fail(f"{REQUIRED_VARIABLE} is set but: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> dict[str, str]:
    """Measurements printed at the end of the run (pytest_terminal_summary below)."""
    return request.config.stash.setdefault(FIGURES, {})


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    figures = config.stash.get(FIGURES, {})
    if figures:
        terminalreporter.section("deployment figures (real containers)")
        for name, value in figures.items():
            terminalreporter.write_line(f"{name}: {value}")


def compose_plugin() -> bool:
    version = ["docker", "compose", "version"]
    return subprocess.run(version, capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if shutil.which("docker") and not compose_plugin():
        unavailable("the docker CLI has no Compose v2 plugin (`docker compose version` fails)")
    with ExitStack() as stack:
        try:
            running = stack.enter_context(docker_engine())
        except EngineUnavailable as exc:
            unavailable(str(exc))
        yield running


@pytest.fixture(scope="module")
def project(
    engine: Engine, figures: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """docker-compose.yml as a project of its own, on free host ports, its image built
    from deploy/Dockerfile under a name of its own; `down -v` and the image removed after."""
    try:
        images = provide_images(engine)
    except RuntimeError as exc:
        unavailable(f"the pinned images are not pullable and no stand-ins were built: {exc}")
    figures["engine"] = "own dockerd (started by the test)" if engine.own else "this machine's"
    figures["images"] = ", ".join(f"{image} ({kind})" for image, kind in images.items())
    name = f"arrayqtest{uuid.uuid4().hex[:10]}"
    variables = {
        "API_PORT": str(free_port()),
        "S3_PORT": str(free_port()),
        "APP_IMAGE": f"{name}-app:latest",
    }
    running = Project(engine, name, variables)
    started = time.monotonic()
    running.compose("build", timeout=900)
    figures["image build"] = f"{time.monotonic() - started:.0f} s"
    try:
        yield running
    finally:
        if running.leftovers()["containers"]:  # a step failed before `down`: keep the logs
            log = tmp_path_factory.mktemp("compose") / "compose.log"
            log.write_text(running.compose("logs", "--no-color", "--timestamps", timeout=60))
            figures["container logs"] = str(log)
        running.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")
        engine.docker("image", "rm", "--force", variables["APP_IMAGE"], check=False)
