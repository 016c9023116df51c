"""What the benchmarks ran on: the machine, the date and the versions."""

import os
import platform
import re
import shutil
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from arrayq.client.processes import find_redis_server
from bench.report import Table
from tests.support.seaweed import weed_binary

PACKAGES = ("numpy", "orjson", "fastapi", "starlette", "uvicorn", "celery", "redis", "pillow")


def describe() -> Table:
    table = Table(["what", "value"])
    table.add("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    table.add("CPU", f"{_cpu_model()} ({platform.machine()}), {os.cpu_count()} cores")
    table.add("memory", f"{_mem_total_gib():.1f} GiB")
    table.add("OS", f"{platform.system()} {platform.release()}")
    table.add("python", platform.python_version())
    for name in PACKAGES:
        table.add("redis (python client)" if name == "redis" else name, _package_version(name))
    table.add("redis server", _command_version([find_redis_server(), "--version"], r"v=(\S+)"))
    table.add("nginx", _nginx_version())
    table.add(
        "SeaweedFS", _command_version([weed_binary(), "version"], r"version (?:\S+ )?(\d[\w.]*)")
    )
    return table


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _nginx_version() -> str:
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(path):
        return "not installed"
    return _command_version([path, "-v"], r"nginx/(\S+)")


def _command_version(argv: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "unknown"
