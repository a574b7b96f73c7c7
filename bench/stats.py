"""Small, dependency-free summaries of timing samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = math.ceil(position)
    weight = position - lower
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


@dataclass(frozen=True)
class Summary:
    """n, p50, p95, mean, min and max of samples given in seconds, reported in milliseconds."""

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
            n=len(ms),
            p50_ms=percentile(ms, 0.5),
            p95_ms=percentile(ms, 0.95),
            mean_ms=sum(ms) / len(ms),
            min_ms=min(ms),
            max_ms=max(ms),
        )


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan
