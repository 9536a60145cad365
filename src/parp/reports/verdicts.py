"""Claims and verdicts as data: what a report concludes about the PARP paper's claims, before any sentence is
written. :mod:`parp.reports.tables` and :mod:`parp.reports.transfer` compute them, :mod:`parp.reports.markdown`
alone turns them into prose, so a test can check a verdict without pinning its wording."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

from .stats import Difference


class Verdict(enum.Enum):
    HOLDS = "holds"
    HOLDS_PARTLY = "holds partly"  # some points beyond the spread in the claimed direction, some against it
    HOLDS_FOR_SOME = "holds for some languages"  # an existential claim met in some languages only
    FAILS = "does not hold"
    NOT_SEPARABLE = "not separable"  # every difference within the seed spread (or one seed: no spread)
    NOT_MEASURED = "not measured"  # the sweep lacks the cells the claim needs


@dataclass(frozen=True)
class Comparison:
    """One measured difference a claim rests on: ``sides[0] - sides[1]`` (method names), means over seeds, at one
    language and sparsity (``mask_from``: the donor language of a transfer; ``updates``: an equal-budget pair)."""

    sides: tuple[str, str]
    difference: Difference
    language: str | None = None
    sparsity: float | None = None
    mask_from: str | None = None
    updates: int | None = None

    @property
    def diff(self) -> float:
        return self.difference.diff

    @property
    def spread(self) -> float | None:
        return self.difference.spread

    @property
    def separable(self) -> bool:
        return self.difference.separable


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim (``"a"`` ... ``"e"``, ``"equal-budget"``, or a part of one), its verdict and the evidence: the
    comparisons, the parts it combines (per language, per multilingual run, per method and sparsity) named by
    ``subject``, and the claim's other measured numbers in ``figures`` (cost ratios, IoUs, sign tests)."""

    claim: str
    verdict: Verdict
    metric: str | None = None
    comparisons: tuple[Comparison, ...] = ()
    parts: tuple["ClaimVerdict", ...] = ()
    subject: str | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)

    def with_sides(self, *sides: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.sides == tuple(sides)]


def judge(points: list[Difference] | list[Comparison], lower_is_claimed: bool) -> Verdict:
    """Held where the claimed direction exceeds the seed spread, failed where the opposite does (partly where
    both), and not separable where every difference is within it."""
    good = sum(p.separable and (p.diff < 0) == lower_is_claimed for p in points)
    bad = sum(p.separable and (p.diff < 0) != lower_is_claimed for p in points)
    if not good and not bad:
        return Verdict.NOT_SEPARABLE
    if bad == 0:
        return Verdict.HOLDS
    return Verdict.HOLDS_PARTLY if good else Verdict.FAILS


def combine(parts: list[ClaimVerdict]) -> Verdict:
    """Holds where every part holds, partly where some do, fails where none does."""
    held = sum(p.verdict is Verdict.HOLDS for p in parts)
    return Verdict.HOLDS if held == len(parts) else Verdict.HOLDS_PARTLY if held else Verdict.FAILS
