"""Running the sections in order and writing RESULTS.md."""

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import (
    download,
    inline_json,
    machine,
    overhead,
    peers,
    png,
    scale,
    upload,
    waiting,
    zarr_read,
)
from bench.config import Plan
from bench.report import Section, Target, targets_table
from bench.services import running_service
from tests.support.service import Service

ANALYSIS = Path(__file__).with_name("analysis.md")
SERVICE_SECTIONS = frozenset({2, 3, 4, 6, 8, 9})


@dataclass
class Context:
    plan: Plan
    workdir: Path
    service: Service | None = None


SECTIONS: dict[int, Callable[[Context], Section]] = {
    1: lambda ctx: inline_json.run(ctx.plan),
    2: lambda ctx: download.run(ctx.plan, _subdir(ctx, "download"), _service(ctx)),
    3: lambda ctx: overhead.run(ctx.plan, _subdir(ctx, "overhead"), _service(ctx)),
    4: lambda ctx: upload.run(ctx.plan, _subdir(ctx, "upload"), _service(ctx)),
    5: lambda ctx: png.run(ctx.plan),
    6: lambda ctx: zarr_read.run(ctx.plan, _subdir(ctx, "zarr"), _service(ctx)),
    7: lambda ctx: scale.run(ctx.plan, _subdir(ctx, "scale")),
    8: lambda ctx: waiting.run(ctx.plan, _subdir(ctx, "waiting"), _service(ctx)),
    9: lambda ctx: peers.run(ctx.plan, _subdir(ctx, "peers"), _service(ctx)),
}


@dataclass
class Outcome:
    sections: list[Section] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    seconds: float = 0.0


def run_suite(plan: Plan, numbers: list[int], workdir: Path | None = None) -> Outcome:
    outcome = Outcome()
    start = time.perf_counter()
    with _workdir(workdir) as root:
        context = Context(plan, root)
        needs_service = SERVICE_SECTIONS & set(numbers)
        with _maybe_service(context, root / "arrayq", bool(needs_service)):
            for number in numbers:
                outcome.sections.append(_run_section(number, context, outcome))
    outcome.seconds = time.perf_counter() - start
    return outcome


def _run_section(number: int, context: Context, outcome: Outcome) -> Section:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    print(f"section {number} ...", flush=True)
    try:
        section = SECTIONS[number](context)
    except Exception:
        outcome.failed.append(number)
        section = Section(f"{number}. failed", "```\n" + traceback.format_exc()[-4000:] + "```")
    took = time.perf_counter() - start
    section.notes.append(f"Ran in {took:.0f} s; 1-minute load average at its start: {load:.1f}.")
    print(f"section {number} done in {took:.0f} s", flush=True)
    return section


def _subdir(context: Context, name: str) -> Path:
    path = context.workdir / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _service(context: Context) -> Service:
    assert context.service is not None
    return context.service


@contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix="arrayq-bench-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _maybe_service(context: Context, root: Path, wanted: bool) -> Iterator[None]:
    if not wanted:
        yield
        return
    with running_service(root, workers=overhead.WORKERS) as service:
        context.service = service
        yield


def results_markdown(plan: Plan, outcome: Outcome, command: str) -> str:
    mode = "the quick mode: small sizes, one run each" if plan.quick else "the full suite"
    parts = [
        "# arrayq benchmarks",
        f"Written by `{command}` ({mode}) in {outcome.seconds:.0f} s. Every figure is from "
        "this one run; each benchmark runs the naive way and arrayq's way side by side, "
        "taking turns. The machine is shared with other work: each section records the "
        "load average when it started.",
        "## Machine",
        machine.describe().markdown(),
        "## Targets",
        targets_table(_all_targets(outcome.sections)).markdown(),
        *(section.markdown() for section in outcome.sections),
    ]
    if ANALYSIS.exists():
        parts.append(ANALYSIS.read_text().strip())
    return "\n\n".join(parts) + "\n"


def _all_targets(sections: list[Section]) -> list[Target]:
    return [
        Target(f"{section.title.split('.')[0]}. {target.what}", target.goal, target.measured,
               target.met)
        for section in sections
        for target in section.targets
    ]  # fmt: skip
