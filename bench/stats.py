"""Small statistics and formatting helpers shared by the bench sections."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one measurement, in seconds."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        if not samples:
            raise ValueError("a timing needs at least one sample")
        return cls(tuple(samples))

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        """Nearest-rank 95th percentile (the maximum when there are fewer than 20 samples)."""
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def median_ms(self) -> float:
        return self.median * 1000

    @property
    def p95_ms(self) -> float:
        return self.p95 * 1000


def ms(seconds: float) -> str:
    """Milliseconds with a precision that suits the magnitude."""
    value = seconds * 1000
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float) -> str:
    return f"{value:.2f}×"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table; `align` holds 'l' or 'r' per column (default: first left)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
