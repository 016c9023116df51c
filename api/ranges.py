"""HTTP byte ranges (RFC 9110 section 14), checked before any byte is sent so
that a bad header gets a JSON error like every other."""

from arrayq.api.errors import InvalidRange, RangeNotSatisfiable


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]]:
    """The `(start, end_exclusive)` ranges of a `Range` header, in order; empty
    when there is no header. 400 when malformed, 416 when none is satisfiable."""
    if header is None:
        return []
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        raise InvalidRange(f"malformed Range header {header[:100]!r}")
    ranges = [_one_range(part.strip(), size, header) for part in spec.split(",")]
    satisfiable = [r for r in ranges if r is not None]
    if not satisfiable:
        raise RangeNotSatisfiable(
            f"no part of {header[:100]!r} is in 0-{size - 1}",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return satisfiable


def _one_range(part: str, size: int, header: str) -> tuple[int, int] | None:
    first, dash, last = part.partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or not _digits_or_empty(first, last):
        raise InvalidRange(f"malformed Range header {header[:100]!r}")
    if not first:  # a suffix: the last N bytes
        length = min(int(last), size)
        return (size - length, size) if length else None
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        raise InvalidRange(f"range start after its end in {header[:100]!r}")
    return (start, end + 1) if start < size else None


def _digits_or_empty(*values: str) -> bool:
    return all(value == "" or value.isdigit() for value in values)
