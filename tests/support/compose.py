"""Read docker-compose.yml the way Compose does, so tests can run its services as local processes.

Only what the file uses is supported: YAML merge keys, and interpolation of `${VAR}`,
`${VAR:-default}`, `${VAR-default}` (defaults may nest), `$VAR` and `$$`. Anything else raises.
"""

import re
import shlex
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@cache
def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The parsed file, not interpolated (anchors and `<<` merges resolved by YAML)."""
    return yaml.safe_load(path.read_text())


def compose_service(name: str) -> dict[str, Any]:
    return load_compose()["services"][name]


def compose_command(name: str, variables: Mapping[str, str] | None = None) -> list[str]:
    """The service's `entrypoint` then `command` as the file sets them, interpolated.

    An image's own entrypoint is not known here (for `seaweedfs` it is `weed`).

    `variables` plays the shell environment / `.env` file; by default every `${VAR:-x}` is x.
    """
    spec = compose_service(name)
    argv = [*_argv(spec.get("entrypoint")), *_argv(spec.get("command"))]
    return [interpolate(arg, variables or {}) for arg in argv]


def compose_environment(name: str, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the service's container gets from the file, interpolated."""
    environment = compose_service(name).get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {
        key: interpolate(_scalar(value), variables or {})
        for key, value in environment.items()
        if value is not None
    }


def referenced_variables(text: str) -> set[str]:
    """Names of the variables that `text` interpolates, nested defaults included."""
    return set(re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", text.replace("$$", "")))


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        piece, index = _next_piece(text, index, variables)
        out.append(piece)
    return "".join(out)


def _next_piece(text: str, index: int, variables: Mapping[str, str]) -> tuple[str, int]:
    if text.startswith("$$", index):
        return "$", index + 2
    if text.startswith("${", index):
        end = _closing_brace(text, index + 2)
        return _substitute(text[index + 2 : end], variables), end + 1
    bare = _NAME.match(text, index + 1) if text[index] == "$" else None
    if bare:
        return variables.get(bare.group(), ""), bare.end()
    return text[index], index + 1


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            if depth == 0:
                return index
            depth -= 1
    raise ValueError(f"unclosed ${{ in {text!r}")


def _substitute(expression: str, variables: Mapping[str, str]) -> str:
    match = _NAME.match(expression)
    if not match:
        raise ValueError(f"bad variable name in ${{{expression}}}")
    value, rest = variables.get(match.group()), expression[match.end() :]
    if not rest:
        return value or ""
    if rest.startswith(":-"):
        return value if value else interpolate(rest[2:], variables)
    if rest.startswith("-"):
        return value if value is not None else interpolate(rest[1:], variables)
    raise ValueError(f"unsupported interpolation ${{{expression}}}")


def _argv(value: str | list[Any] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [_scalar(item) for item in value]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
