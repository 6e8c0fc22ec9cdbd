"""The report helpers both benchmarks share: medians that skip missing numbers, and plain-text tables."""
from __future__ import annotations

import statistics


def median(values) -> float | None:
    """The median of the values that are not None; None if there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else format(value, spec) + suffix


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def format_table(title: str, header: list[str], body: list[list[str]]) -> str:
    """First and last columns left-aligned, numbers right-aligned."""
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    lines = [title]
    for cells in [header, *body]:
        lines.append("  " + "  ".join(c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    return "\n".join(lines)
