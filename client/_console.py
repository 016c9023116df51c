"""What the client commands of the CLI parse and print: `--param`/`--input`
values, tables, and errors as exit codes."""

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from arrayq.client import _arrays
from arrayq.client._client import Client
from arrayq.client._errors import ArrayqError, BadRequest, JobCancelled, JobFailed

EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Connection:
    url: str | None
    api_key: str | None


def stdout() -> Console:
    """A console on stdout, wide enough off a terminal that no id is cut."""
    console = Console()
    if not console.is_terminal:
        console.width = 200
    return console


def stderr() -> Console:
    return Console(stderr=True)


@contextlib.contextmanager
def connect(connection: Connection) -> Iterator[Client]:
    """A client; its errors end the command with exit code 2 for a request the
    server refused as invalid, 1 for anything else (a failed job, a server error)."""
    try:
        with Client(connection.url, connection.api_key) as client:
            yield client
    except (JobFailed, JobCancelled) as exc:
        stderr().print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except ArrayqError as exc:
        stderr().print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_USAGE if isinstance(exc, BadRequest) else EXIT_FAILED) from None


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """`k=v` pairs; each value is read as JSON, else taken as a string."""
    params = {}
    for item in items:
        name, value = _split(item, "--param", "k=v")
        try:
            params[name] = orjson.loads(value)
        except orjson.JSONDecodeError:
            params[name] = value
    return params


def parse_inputs(items: Iterable[str]) -> dict[str, np.ndarray]:
    """`name=@file.npy` (a .npy file) or `name=[[1, 2], [3, 4]]` (a JSON list)."""
    inputs = {}
    for item in items:
        name, value = _split(item, "--input", "name=@file.npy")
        inputs[name] = _load(value) if value.startswith("@") else _from_json(name, value)
    return inputs


def _split(item: str, option: str, form: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{item!r} is not of the form {form}", param_hint=option)
    return name.strip(), value


def _load(value: str) -> np.ndarray:
    path = Path(value[1:]).expanduser()
    if not path.is_file():
        raise typer.BadParameter(f"no file {str(path)!r}", param_hint="--input")
    try:
        return _arrays.load_npy(path)
    except ArrayqError as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--input") from None


def _from_json(name: str, value: str) -> np.ndarray:
    try:
        return np.asarray(orjson.loads(value))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise typer.BadParameter(
            f"{name}: give @file.npy or a JSON list ({exc})", param_hint="--input"
        ) from None


def ops_table(ops: list[dict[str, Any]]) -> Table:
    table = Table("op", "inputs", "params", "result", "summary")
    for op in ops:
        params = ", ".join(_param_text(name, schema) for name, schema in _properties(op))
        row = (op["name"], ", ".join(op["inputs"]), params, op["result"], op["summary"] or "")
        table.add_row(*map(escape, row))
    return table


def _properties(op: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    return (op.get("params") or {}).get("properties", {}).items()


def _param_text(name: str, schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return name
    return f"{name}={orjson.dumps(schema['default']).decode()}"


def jobs_table(jobs: Iterable[dict[str, Any]], limit: int) -> Table:
    table = Table("id", "op", "status", "progress", "created", "result")
    for job in itertools.islice(jobs, limit):
        row = (
            job["id"],
            job["op"],
            job["status"],
            f"{100 * (job.get('progress') or 0):.0f}%",
            (job.get("created_at") or "")[:19].replace("T", " "),
            _result_text(job),
        )
        table.add_row(*map(escape, row))
    return table


def _result_text(job: dict[str, Any]) -> str:
    result = job.get("result")
    if result:
        return f"{result['dtype']} {tuple(result['shape'])}"
    error = job.get("error")
    return f"{error['type']}: {error['message']}"[:60] if error else ""


def done_text(job: dict[str, Any]) -> str:
    """A line on how the job ended, escaped for rich."""
    return escape(f"{job['id']} {job['status']}: {_result_text(job)}".rstrip(": "))
