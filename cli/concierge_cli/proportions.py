"""Shares of up-ratings and whether two of them differ, in pure Python (no SciPy in the CLI).

- `wilson_interval`: the Wilson score interval of a proportion — unlike the normal
  approximation it stays inside [0, 1] and is honest for small counts and shares near 0 or 1.
- `two_proportion_z_test`: the pooled two-proportion z-test, two-sided.
- `fisher_exact`: Fisher's exact test of a 2x2 table, two-sided (the tables whose probability
  under the null is no greater than the observed one's, as SciPy computes it).
- `compare`: the z-test when every expected count of the 2x2 table is at least 5 (the usual
  rule for the normal approximation), Fisher's exact test otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# The 97.5th percentile of the standard normal distribution: a two-sided 95% interval.
Z_95 = 1.959963984540054
SIGNIFICANCE = 0.05
# Below this expected count in a cell, the normal approximation is not trusted.
_MIN_EXPECTED = 5.0
# Tables as likely as the observed one, up to rounding, count as "as extreme" (SciPy's factor).
_RELATIVE_TOLERANCE = 1 + 1e-7


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of `successes` out of `trials` ((0, 1) without trials)."""
    _check(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    z2 = z * z
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials**2))
    # All or none: the bound on that side is the share itself (rounding must not move it).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def two_proportion_z_test(k1: int, n1: int, k2: int, n2: int) -> float:
    """The two-sided p-value of the pooled z-test of k1/n1 against k2/n2."""
    _check(k1, n1)
    _check(k2, n2)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if spread == 0:  # everyone up, or everyone down, on both sides: no difference to see
        return 1.0
    z = (k1 / n1 - k2 / n2) / math.sqrt(spread)
    return math.erfc(abs(z) / math.sqrt(2))


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """The two-sided p-value of Fisher's exact test of the table [[a, b], [c, d]]."""
    if min(a, b, c, d) < 0:
        raise ValueError("a 2x2 table holds counts, not negative numbers")
    row, column, total = a + b, a + c, a + b + c + d
    if total == 0:
        return 1.0
    lowest, highest = max(0, row + column - total), min(row, column)
    ways = math.comb(total, column)

    def probability(x: int) -> float:
        # Exact integers, divided once: no overflow, no loss for any table a report meets.
        return math.comb(row, x) * math.comb(total - row, column - x) / ways

    observed = probability(a) * _RELATIVE_TOLERANCE
    p_value = sum(
        chance for x in range(lowest, highest + 1) if (chance := probability(x)) <= observed
    )
    return min(1.0, p_value)


@dataclass(frozen=True)
class Comparison:
    """Whether one share of up-ratings differs from another, and by which test."""

    test: Literal["z", "fisher"]
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


def compare(k1: int, n1: int, k2: int, n2: int) -> Comparison:
    """k1 ups of n1 ratings against k2 of n2: the z-test, or Fisher's for small counts."""
    _check(k1, n1)
    _check(k2, n2)
    total, ups = n1 + n2, k1 + k2
    expected = (
        [n * share / total for n in (n1, n2) for share in (ups, total - ups)] if total else [0.0]
    )
    if min(expected) < _MIN_EXPECTED:
        return Comparison("fisher", fisher_exact(k1, n1 - k1, k2, n2 - k2))
    return Comparison("z", two_proportion_z_test(k1, n1, k2, n2))


def _check(successes: int, trials: int) -> None:
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
