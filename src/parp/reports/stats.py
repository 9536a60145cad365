"""Means over seeds and differences set against the seed spread: the arithmetic every table and verdict of a report
shares, so that "beyond the spread" means one thing everywhere."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def mean(values) -> float | None:
    """Mean of the values that were measured (None and NaN left out); None when there are none."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(values) if values else None


def std(values) -> float:
    """Sample standard deviation across seeds; 0.0 with fewer than two values."""
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Difference:
    """Mean(A) - mean(B) over seeds, set against the spread across seeds (the larger of the two sides' standard
    deviations). A claim is called held or failed on it only when the difference exceeds that spread; with fewer
    than two seeds on a side no spread is measured and nothing is separable."""

    diff: float
    spread: float | None

    @property
    def separable(self) -> bool:
        return self.spread is not None and abs(self.diff) > self.spread

    def __str__(self) -> str:
        return f"{self.diff:+.3f} " + (f"± {self.spread:.3f}" if self.spread is not None else "(one seed)")


def difference(a: list[float], b: list[float]) -> Difference | None:
    """``mean(a) - mean(b)`` with its spread; None when a side has no finite value."""
    a = [v for v in a if v is not None and math.isfinite(v)]
    b = [v for v in b if v is not None and math.isfinite(v)]
    if not a or not b:
        return None
    spread = max(std(a), std(b)) if len(a) > 1 and len(b) > 1 else None
    return Difference(statistics.fmean(a) - statistics.fmean(b), spread)


def error_bars(values: list[list[float]]) -> list[float] | None:
    """Standard deviations for error bars (none on a point with one seed), or None when no point has 2 seeds."""
    if not values or all(len(v) < 2 for v in values):
        return None
    return [std(v) if len(v) >= 2 else 0.0 for v in values]


def sign_test(diffs: list[float]) -> tuple[int, int, float]:
    """(lower, non-zero, two-sided exact sign-test p) over pairs: whether differences too small for the seed spread
    of any one pair still lean one way across many. Pairs sharing a language are not independent, so p is optimistic."""
    lower, n = sum(d < 0 for d in diffs), sum(d != 0 for d in diffs)
    tail = sum(math.comb(n, k) for k in range(min(lower, n - lower) + 1)) / 2**n if n else 1.0
    return lower, n, min(1.0, 2 * tail)
