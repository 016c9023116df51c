"""`_client.py` is generated from `_async.py`, so the sync and async clients
cannot drift apart: line by line substitutions, the way httpcore does it.

    python -m arrayq.client._unasync           # write _client.py
    python -m arrayq.client._unasync --check   # exit 1 if it is stale

What differs beyond the substitutions lives in `_async_io.py`/`_sync_io.py`.
"""

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE, TARGET = HERE / "_async.py", HERE / "_client.py"
HEADER = "# Generated from _async.py by `python -m arrayq.client._unasync`: do not edit.\n"

SUBSTITUTIONS = [
    ("_async_io", "_sync_io"),
    ("AsyncIterator", "Iterator"),
    ("AsyncIterable", "Iterable"),
    ("Async([A-Z][A-Za-z0-9_]*)", r"\2"),
    ("async def", "def"),
    ("async with", "with"),
    ("async for", "for"),
    ("await ", ""),
    ("aclose", "close"),
    ("aiter_bytes", "iter_bytes"),
    ("aiter_lines", "iter_lines"),
    ("aread", "read"),
    ("asynccontextmanager", "contextmanager"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
]
# `(await job.result()).shape` reads `job.result().shape`.
# A grouping parenthesis only: not the one of a call, `f(await g())`.
_UNWRAP = (re.compile(r"(?<![\w\])])\(await ([\w.]+\([^()]*\))\)"), r"\1")
_COMPILED = [_UNWRAP] + [
    (re.compile(rf"(^|\b){pattern}($|\b)"), repl) for pattern, repl in SUBSTITUTIONS
]


def unasync_line(line: str) -> str:
    # The boundary groups match empty text, so a pattern's own group is \2.
    for pattern, repl in _COMPILED:
        line = pattern.sub(repl, line)
    return line


def generate(source: str) -> str:
    """The sync module, sorted and formatted by ruff as the project's code is."""
    text = HEADER + "".join(unasync_line(line) for line in source.splitlines(keepends=True))
    text = _ruff(["check", "--fix", "--select", "I", "--quiet"], text)
    return _ruff(["format"], text)


def _ruff(args: list[str], text: str) -> str:
    command = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(TARGET), "-"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ruff {' '.join(args)} failed on the generated code: {done.stderr}")
    return done.stdout


def main(argv: list[str]) -> int:
    expected = generate(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != expected:
            print(f"{TARGET} is stale: run python -m arrayq.client._unasync", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(expected)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
