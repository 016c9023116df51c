"""docker-compose.yml run as one Compose project of its own: its commands, its containers,
a look into its Redis, and the images it pins (real when pullable, else stand-ins)."""

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from arrayq.storage import broker, keys
from tests.deploy.engine import Engine, run
from tests.support.compose import COMPOSE_FILE, REPO_ROOT, load_compose, referenced_variables

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
STANDINS = REPO_ROOT / "tests" / "deploy" / "standins.sh"
STANDIN_LABEL = "org.arrayq.standin"


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    service: str
    state: str  # running, exited, ...
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    exit_code: int


@dataclass
class Project:
    engine: Engine
    name: str
    variables: dict[str, str]  # what the shell would set: API_PORT, S3_PORT, APP_IMAGE

    @property
    def env(self) -> dict[str, str]:
        """The engine's environment without anything the compose file would interpolate
        (so this machine's ARRAYQ_* or COMPOSE_* do not leak in), plus our variables."""
        used = referenced_variables(COMPOSE_FILE.read_text())
        env = {k: v for k, v in self.engine.env.items() if k not in used}
        env = {k: v for k, v in env.items() if not k.startswith("COMPOSE_")}
        return {**env, **self.variables}

    def compose(self, *args: str, timeout: float = 300, input: str | None = None) -> str:
        argv = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.name, *args]
        return run(argv, self.env, timeout=timeout, input=input)

    def containers(self, service: str | None = None) -> list[Container]:
        lines = self.compose("ps", "-a", "--format", "json", *([service] if service else []))
        rows = [json.loads(line) for line in lines.splitlines() if line.strip()]
        return sorted((_container(row) for row in rows), key=lambda c: c.name)

    def hostnames(self, service: str) -> dict[str, str]:
        """Container name by hostname (a Celery node is named `arrayq-<pid>@<hostname>`)."""
        ids = [c.id for c in self.containers(service)]
        out = self.engine.docker("inspect", "-f", "{{.Config.Hostname}} {{.Name}}", *ids)
        return dict((h, n.lstrip("/")) for h, n in (line.split() for line in out.splitlines()))

    def redis(self, *commands: list[str]) -> list[str]:
        """One reply line per command, through redis-cli inside the redis container."""
        script = "".join(" ".join(_quote(a) for a in command) + "\n" for command in commands)
        return self.compose("exec", "-T", "redis", "redis-cli", input=script).splitlines()

    def workers_of(self, job_ids: list[str]) -> dict[str, str]:
        """The worker container that ran (or runs) each job, from its Redis record; one
        removed since (scaled down) by its hostname."""
        nodes = self.redis(*(["HGET", keys.job_key(job_id), "worker"] for job_id in job_ids))
        by_host = self.hostnames("worker")
        hosts = [node.partition("@")[2] for node in nodes]
        return {j: by_host.get(h, f"removed ({h})") for j, h in zip(job_ids, hosts, strict=True)}

    def queued_messages(self) -> list[str]:
        """The raw messages waiting on the worker queues, read in Redis itself."""
        lists = [key for queue in broker.QUEUES for key in broker.queue_keys(queue)]
        return self.redis(*(["LRANGE", key, "0", "-1"] for key in lists))

    def wait_healthy(self, service: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.health == "healthy" for c in self.containers(service)):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{service} not healthy after {timeout}s: {self.containers(service)}")

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes that still carry this project's label."""
        label = f"label=com.docker.compose.project={self.name}"
        found = {
            "containers": self.engine.docker("ps", "-a", "-q", "--filter", label),
            "networks": self.engine.docker("network", "ls", "-q", "--filter", label),
            "volumes": self.engine.docker("volume", "ls", "-q", "--filter", label),
        }
        return {kind: out.split() for kind, out in found.items()}


def _container(row: dict[str, Any]) -> Container:
    return Container(
        id=row["ID"],
        name=row["Name"],
        service=row["Service"],
        state=row["State"],
        health=row.get("Health", ""),
        exit_code=int(row.get("ExitCode", 0)),
    )


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w:.@/-]+", arg) else json.dumps(arg)


def pinned_images() -> list[str]:
    """The images the default profile runs: the Dockerfile's base and the file's services."""
    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert base, "deploy/Dockerfile has no FROM"
    services = load_compose()["services"].values()
    used = [s["image"] for s in services if "build" not in s and not s.get("profiles")]
    return [base.group(1), *used]


def provide_images(engine: Engine) -> dict[str, str]:
    """Each pinned image as 'pinned' (present or pulled) or 'stand-in' (built by standins.sh)."""
    kinds: dict[str, str] = {}
    for image in pinned_images():
        kinds[image] = "pinned" if _real_image(engine, image) else "stand-in"
    missing = [image for image, kind in kinds.items() if kind == "stand-in"]
    if missing:
        env = {**engine.env, "PYTHON": sys.executable}  # a Python with pip, for the wheels
        run(["bash", str(STANDINS), *missing], env, timeout=900)
    return kinds


def _real_image(engine: Engine, image: str) -> bool:
    """Present and not one of ours, or pulled now."""
    template = f'{{{{index .Config.Labels "{STANDIN_LABEL}"}}}}'
    label = engine.docker("image", "inspect", "-f", template, image, check=False).strip()
    if label not in ("", "<no value>"):
        return False  # a stand-in from an earlier run: standins.sh refreshes it if stale
    if engine.succeeds("image", "inspect", image):
        return True
    try:
        engine.docker("pull", "-q", image, timeout=120)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True
