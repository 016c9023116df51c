"""The results as Markdown: sections of tables, with the figures formatted alike."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.timing import Samples


@dataclass
class Table:
    headers: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"row of {len(cells)} cells for {len(self.headers)} columns")
        self.rows.append([str(cell) for cell in cells])

    def markdown(self) -> str:
        lines = [_row(self.headers), _row(["---"] * len(self.headers))]
        lines.extend(_row(row) for row in self.rows)
        return "\n".join(lines)


@dataclass
class Section:
    title: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list["Target"] = field(default_factory=list)

    def markdown(self) -> str:
        parts = [f"## {self.title}", self.intro]
        parts.extend(table.markdown() for table in self.tables)
        if self.targets:
            parts.append(targets_table(self.targets).markdown())
        parts.append("\n".join(f"- {note}" for note in self.notes))
        return "\n\n".join(part for part in parts if part)


@dataclass(frozen=True)
class Target:
    what: str
    goal: str
    measured: str
    met: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


def targets_table(targets: Sequence[Target]) -> Table:
    table = Table(["target", "goal", "measured", "met?"])
    for target in targets:
        table.add(target.what, target.goal, target.measured, target.verdict)
    return table


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def spread(values: Samples, digits: int = 1) -> str:
    """`median (min-max)`, or the single value when there is one sample."""
    median = _number(values.median, digits)
    if len(values.values) == 1:
        return median
    return f"{median} ({_number(values.low, digits)}-{_number(values.high, digits)})"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _number(value: float, digits: int) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if abs(value) >= 1 else f"{value:.{digits + 2}g}"
