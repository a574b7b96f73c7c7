"""Summaries of timing samples and the Markdown every benchmark section is written in."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1), interpolated linearly between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    weight = position - lower
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


@dataclass(frozen=True)
class Summary:
    """n, p50, p95, mean, min and max of samples given in seconds, in milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = [value * 1000 for value in seconds]
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(ms), percentile(ms, 0.5), percentile(ms, 0.95), sum(ms) / len(ms), min(ms), max(ms)
        )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table; `align` has a letter a column, `l` or `r` (default: `l`, then `r`)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if letter == "r" else "---" for letter in align]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in (headers, rule, *rows))


def ms(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def x(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def verdict(passed: bool) -> str:
    return "**PASS**" if passed else "**FAIL**"


def goals(*rows: tuple[str, str, str, bool]) -> str:
    """A "Goals" subsection: one row a goal (goal, target, measured, whether it is met)."""
    cells = [[goal, target, measured, verdict(met)] for goal, target, measured, met in rows]
    return "### Goals\n\n" + table(["goal", "target", "measured", "result"], cells, "llll")


def reproduce(title: str, name: str, *options: tuple[str, object, object]) -> str:
    """A section's first line: the command that reproduces it, and where its method is.
    `options` are (flag, value, default); a flag is shown when its value is not the default."""
    shown = [f"{flag} {value}" for flag, value, default in options if value != default]
    command = " ".join([".venv/bin/python -m bench.run --only", name, *shown])
    return f"Command: `{command}`. Method: BENCHMARKS.md, “{title}”."
