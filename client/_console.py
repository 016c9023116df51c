"""What the client commands of the CLI parse and print: `--param`/`--input`
values, tables, and errors as exit codes."""

import contextlib
import itertools
import math
import re
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
from arrayq.client._client import Client, Job
from arrayq.client._errors import ArrayqError, BadRequest, JobCancelled, JobFailed
from arrayq.client._http import is_multi, reference, result_info

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


def parse_inputs(items: Iterable[str]) -> dict[str, Any]:
    """`name=@file.npy` (a .npy file), `name=[[1, 2], [3, 4]]` (a JSON list), or
    another job's result: `name=job:ID`, `name=job:ID:OUTPUT`, with `[SLICE]` after."""
    inputs: dict[str, Any] = {}
    for item in items:
        name, value = _split(item, "--input", "name=@file.npy")
        if value.startswith("job:"):
            inputs[name] = _reference(value)
        elif value.startswith("@"):
            inputs[name] = _load(value)
        else:
            inputs[name] = _from_json(name, value)
    return inputs


_REFERENCE = re.compile(
    r"^job:(?P<job>[^:\[\]]+)(?::(?P<output>[^:\[\]]+))?(?:\[(?P<slice>[^\]]*)\])?$"
)


@dataclass(frozen=True)
class Reference:
    """Another job's result as an input, from `job:ID[:OUTPUT][[SLICE]]`."""

    job: str
    output: str | None = None
    slice: str | None = None

    def _arrayq_reference(self) -> dict[str, str]:
        return reference(self.job, self.output, self.slice)


def _reference(value: str) -> Reference:
    match = _REFERENCE.match(value)
    if match is None:
        raise typer.BadParameter(
            f"{value!r}: give job:ID, job:ID:OUTPUT, either with [SLICE] after it",
            param_hint="--input",
        )
    return Reference(match["job"], match["output"], match["slice"])


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
        params = "\n".join(
            param_text(name, schema, name in _required(op)) for name, schema in _properties(op)
        )
        outputs = op.get("outputs") or []
        result = ", ".join(outputs) if len(outputs) > 1 else op["result"]
        row = (op["name"], ", ".join(op["inputs"]), params, result, op["summary"] or "")
        table.add_row(*map(escape, row))
    return table


def _properties(op: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    return (op.get("params") or {}).get("properties", {}).items()


def _required(op: dict[str, Any]) -> set[str]:
    return set((op.get("params") or {}).get("required", []))


def param_text(name: str, schema: dict[str, Any], required: bool = False) -> str:
    """`sigma=1.0 (0 < sigma <= 100)`: the default and the constraints of a
    JSON-schema property."""
    text = name if "default" not in schema else f"{name}={_json(schema['default'])}"
    rules = ["required"] if required else []
    rules += constraints(name, schema)
    return f"{text} ({'; '.join(rules)})" if rules else text


def constraints(name: str, schema: dict[str, Any]) -> list[str]:
    """Readable constraints: bounds, choices, lengths, of the item of an array too."""
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    rules = [rule for branch in branches for rule in _rules(name, branch)]
    return rules


def _rules(name: str, schema: dict[str, Any]) -> list[str]:
    rules = []
    if "enum" in schema:
        rules.append(" | ".join(map(_plain, schema["enum"])))
    bound = _bounds(name, schema)
    if bound:
        rules.append(bound)
    for key, word in (
        ("minItems", ">="),
        ("maxItems", "<="),
        ("minLength", ">="),
        ("maxLength", "<="),
    ):
        if key in schema:
            rules.append(f"len({name}) {word} {schema[key]}")
    if isinstance(schema.get("items"), dict):
        rules += _rules(f"{name}[i]", schema["items"])
    return rules


def _bounds(name: str, schema: dict[str, Any]) -> str:
    low = _side(schema, "minimum", "<=", "exclusiveMinimum", "<")
    high = _side(schema, "maximum", "<=", "exclusiveMaximum", "<")
    if low and high:
        return f"{low[1]} {low[0]} {name} {high[0]} {high[1]}"
    if low:
        return f"{name} {low[0].replace('<', '>')} {low[1]}"
    if high:
        return f"{name} {high[0]} {high[1]}"
    return ""


def _side(
    schema: dict[str, Any], inclusive: str, op: str, exclusive: str, strict: str
) -> tuple[str, str] | None:
    if exclusive in schema:
        return strict, _plain(schema[exclusive])
    if inclusive in schema:
        return op, _plain(schema[inclusive])
    return None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


MAX_PRINTED_ELEMENTS = 1000


def fetch_values(job: Job, name: str | None, slice: str | None) -> dict[str | None, np.ndarray]:
    """The arrays to print: refused (exit 2) when one is too large to read on a terminal."""
    info = result_info(job.wait().document)
    if name is None and slice is None:
        sizes = {
            key: meta
            for key, meta in (info["outputs"].items() if is_multi(info) else [(None, info)])
        }
        for key, meta in sizes.items():
            _check_printable(job.id, key, math.prod(meta["shape"]))
        values = job.result()
        return dict(values) if isinstance(values, dict) else {None: values}
    array = job.output(name or "result", slice).result()
    _check_printable(job.id, name, array.size)
    return {name: array}


def _check_printable(job_id: str, name: str | None, size: int) -> None:
    if size > MAX_PRINTED_ELEMENTS:
        what = f"output {name!r}" if name else "the result"
        stderr().print(
            escape(
                f"{what} has {size} values, too many to print (at most {MAX_PRINTED_ELEMENTS}); "
                f"write it to a file: arrayq get {job_id}{' ' + name if name else ''} -o FILE.npy "
                "(or print part of it with --slice)"
            ),
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE)


def print_values(values: dict[str | None, np.ndarray]) -> None:
    """Each array in NumPy's notation, floats in their shortest exact form."""
    with np.printoptions(threshold=MAX_PRINTED_ELEMENTS + 1, floatmode="unique"):
        for name, array in values.items():
            if name is not None:
                typer.echo(f"{name}: {array.dtype} {tuple(array.shape)}")
            typer.echo(np.array2string(array, separator=", "))


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
