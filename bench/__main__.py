"""`python -m bench [--quick] [--output PATH] [--only 1,3]`: run the benchmarks and
write RESULTS.md."""

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.config import FULL, QUICK
from bench.merge import merge_results
from bench.suite import SECTIONS, results_markdown, run_suite

DEFAULT_OUTPUT = Path(__file__).with_name("RESULTS.md")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    numbers = _sections(args.only)
    outcome = run_suite(plan, numbers, args.workdir)
    command = "python -m bench" + (" --quick" if args.quick else "")
    text = results_markdown(plan, outcome, command)
    if args.merge and args.output.exists():
        dated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = merge_results(args.output.read_text(), text, dated)
    args.output.write_text(text)
    print(f"wrote {args.output} in {outcome.seconds:.0f} s", flush=True)
    if outcome.failed:
        print(f"sections failed: {outcome.failed}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run the arrayq benchmarks and write RESULTS.md."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each (CI)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown file")
    parser.add_argument("--only", default="", help="comma list of section numbers, e.g. 1,5")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those sections in the existing output, keep the others",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep services' files here (default: a temp dir, removed)",
    )
    return parser


def _sections(only: str) -> list[int]:
    if not only:
        return sorted(SECTIONS)
    numbers = sorted({int(part) for part in only.split(",") if part.strip()})
    unknown = set(numbers) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; there are {sorted(SECTIONS)}")
    return numbers


if __name__ == "__main__":
    sys.exit(main())
