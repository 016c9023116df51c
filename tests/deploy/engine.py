"""A Docker engine for the deployment test: the machine's own when `docker info` answers,
else a private dockerd started as root (its own data-root, exec-root, pidfile and socket
under a temporary folder), stopped and removed afterwards with what it added to the host
(the docker0 bridge, its iptables chains, the FORWARD policy, ip_forward)."""

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# A test variable, not a setting of arrayq: CI sets it so that a missing engine fails the run.
REQUIRED_VARIABLE = "ARRAYQ_COMPOSE_TEST_REQUIRED"
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


class EngineUnavailable(Exception):
    """No Docker engine could be used or started; the message says why."""


@dataclass(frozen=True)
class Engine:
    env: dict[str, str]  # the environment a docker command needs to reach this engine
    own: bool  # started by the test

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run(["docker", *args], self.env, timeout=timeout, check=check)

    def succeeds(self, *args: str, timeout: float = 120) -> bool:
        argv = ["docker", *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, timeout=timeout)
        return done.returncode == 0


def run(
    argv: list[str],
    env: dict[str, str],
    *,
    timeout: float,
    check: bool = True,
    input: str | None = None,
) -> str:
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


@contextmanager
def docker_engine() -> Iterator[Engine]:
    if not shutil.which("docker"):
        raise EngineUnavailable("no docker CLI on PATH")
    env = dict(os.environ)
    if _answers(env):
        yield Engine(env, own=False)
        return
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        raise EngineUnavailable("no running Docker engine, and no dockerd to start as root")
    with _own_dockerd() as engine:
        yield engine


def _answers(env: dict[str, str]) -> bool:
    try:
        return run(["docker", "info", "-f", "{{.ServerVersion}}"], env, timeout=20).strip() != ""
    except (RuntimeError, subprocess.TimeoutExpired):
        return False


@contextmanager
def _own_dockerd() -> Iterator[Engine]:
    root = Path(tempfile.mkdtemp(prefix="arrayq-dockerd-"))
    host = HostState.read()
    socket = root / "docker.sock"
    log = (root / "dockerd.log").open("wb")
    argv = ["dockerd", f"--data-root={root / 'data'}", f"--exec-root={root / 'exec'}"]
    argv += [f"--pidfile={root / 'dockerd.pid'}", f"--host=unix://{socket}"]
    daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}"}
    try:
        _wait_ready(daemon, env, root / "dockerd.log")
        yield Engine(env, own=True)
    finally:
        _stop(daemon)
        log.close()
        _unmount_under(root)
        shutil.rmtree(root)
        host.restore()


def _wait_ready(daemon: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            break
        if _answers(env):
            return
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:]
    raise EngineUnavailable(f"dockerd (exit {daemon.poll()}) did not come up:\n{tail}")


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """dockerd stops its containers and its managed containerd on SIGTERM."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)


def _unmount_under(root: Path) -> None:
    """What a stopped dockerd may leave mounted (overlay2's private mount, network
    namespaces), deepest first."""
    prefix = f"{root}/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


@dataclass(frozen=True)
class HostState:
    """What dockerd changes on the host outside its folders, read before it starts."""

    links: frozenset[str]
    rules: dict[str, list[str]]  # `iptables -t TABLE -S`, by table
    ip_forward: str

    @classmethod
    def read(cls) -> "HostState":
        return cls(_links(), _rules(), _IP_FORWARD.read_text().strip())

    def restore(self) -> None:
        for link in _links() - self.links:
            if link == "docker0" or link.startswith(("br-", "veth")):
                subprocess.run(["ip", "link", "delete", link], check=False, capture_output=True)
        for table, before in self.rules.items():
            _undo_rules(table, before, _rules().get(table, []))
        _IP_FORWARD.write_text(self.ip_forward + "\n")


def _links() -> frozenset[str]:
    return frozenset(p.name for p in Path("/sys/class/net").iterdir())


def _rules() -> dict[str, list[str]]:
    if not shutil.which("iptables"):
        return {}
    return {
        table: subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        for table in ("filter", "nat")
    }


def _undo_rules(table: str, before: list[str], after: list[str]) -> None:
    """Take back the rules, chains and policies dockerd added to one table."""
    ours = ("DOCKER", "docker0", "br-")
    added = [r for r in after if r not in before and any(mark in r for mark in ours)]
    for rule in reversed([r for r in added if r.startswith("-A ")]):
        _iptables(table, "-D", *shlex.split(rule)[1:])
    for chain in (r.split()[1] for r in added if r.startswith("-N ")):
        _iptables(table, "-F", chain)
        _iptables(table, "-X", chain)
    for policy in (r for r in before if r.startswith("-P ") and r not in after):
        _iptables(table, *policy.split())


def _iptables(table: str, *args: str) -> None:
    subprocess.run(["iptables", "-t", table, *args], check=False, capture_output=True)
