"""Putting the sections of a partial run (`--only N --merge`) into an existing
RESULTS.md: its section blocks and its rows of the targets table replace those of
the same numbers; every other section keeps its figures (and says when they ran)."""

import re

_NUMBERED = re.compile(r"^## (\d+)\. ")


def merge_results(existing: str, partial: str, dated: str) -> str:
    old, new = _blocks(existing), _blocks(partial)
    numbers = {number for number in (_number(block) for block in new) if number is not None}
    targets = next((block for block in new if block.startswith("## Targets")), "")
    merged = []
    for block in old:
        number = _number(block)
        if number in numbers:
            continue
        if block.startswith("## Targets"):
            block = _merge_targets(block, targets, numbers)
        merged.append(block)
    for block in new:
        number = _number(block)
        if number in numbers:
            note = f"- Measured on {dated}, by a partial run merged into this file."
            merged.insert(_position(merged, number), block.rstrip("\n") + "\n" + note + "\n")
    return "".join(merged)


def _blocks(text: str) -> list[str]:
    blocks: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("## ") or not blocks:
            blocks.append("")
        blocks[-1] += line
    return blocks


def _number(block: str) -> int | None:
    found = _NUMBERED.match(block)
    return int(found.group(1)) if found else None


def _position(blocks: list[str], number: int) -> int:
    """Before the first numbered section with a higher number, or the first
    unnumbered block after the sections (the hand-written analysis)."""
    seen_numbered = False
    for index, block in enumerate(blocks):
        current = _number(block)
        if current is not None:
            seen_numbered = True
            if current > number:
                return index
        elif seen_numbered:
            return index
    return len(blocks)


def _merge_targets(block: str, partial: str, numbers: set[int]) -> str:
    def of_numbers(line: str) -> bool:
        return any(line.startswith(f"| {number}. ") for number in numbers)

    kept = [line for line in block.splitlines() if not of_numbers(line)]
    added = [line for line in partial.splitlines() if of_numbers(line)]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept + added) + "\n\n"
