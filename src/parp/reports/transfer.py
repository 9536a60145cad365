"""The transfer matrix's numbers: how much a language B loses when PARP starts from language A's OMP mask instead
of its own start, and how much from a random mask with A's per-tensor sparsities (the control).

Per ordered pair (A, B) and sparsity: error(B | mask A) - error(B | own), error(B | random twin of A) - error(B |
own) and error(B | mask A) - error(B | random twin), each the difference of the means over seeds with the larger
seed spread of its two sides (``parp.reports.stats.difference``), so a difference is called only where it
exceeds that spread. Rows come from ``results.csv``: the ``transfer`` / ``transfer-random`` cells (``mask_from``
= A) and B's own ``parp`` cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..results import TRANSFER, TRANSFER_RANDOM
from .stats import Difference, difference, mean, sign_test
from .verdicts import ClaimVerdict, Comparison, Verdict, judge

OWN = "parp"  # B with its own start: the reference every transfer is measured against


@dataclass(frozen=True)
class TransferPair:
    source: str  # A: whose OMP mask (or its random twin) B starts from
    target: str  # B
    sparsity: float
    own: float | None  # mean error of B's own PARP
    transfer: Difference | None  # error(B | mask A) - error(B | own)
    random: Difference | None  # error(B | random twin of A) - error(B | own)
    versus_random: Difference | None  # error(B | mask A) - error(B | random twin of A)


def _values(rows: list[dict[str, Any]], metric: str, **where) -> list[float]:
    return [r[metric] for r in rows if all(r.get(k) == v for k, v in where.items()) and r.get(metric) is not None]


def transfer_pairs(rows: list[dict[str, Any]], metric: str) -> list[TransferPair]:
    """Every (A, B, sparsity) with at least one transfer or control row, ordered by sparsity, A, B."""
    keys = sorted({(r["sparsity_target"], r["mask_from"], r["language"]) for r in rows
                   if r.get("mask_from") and r["method"] in (TRANSFER, TRANSFER_RANDOM)})
    pairs = []
    for s, source, target in keys:
        own = _values(rows, metric, method=OWN, language=target, sparsity_target=s, mask_from=None)
        moved = _values(rows, metric, method=TRANSFER, language=target, sparsity_target=s, mask_from=source)
        twin = _values(rows, metric, method=TRANSFER_RANDOM, language=target, sparsity_target=s, mask_from=source)
        pairs.append(TransferPair(source, target, s, mean(own), difference(moved, own), difference(twin, own),
                                  difference(moved, twin)))
    return pairs


def transfer_grid(pairs: list[TransferPair], sparsity: float, which: str = "transfer"
                  ) -> tuple[list[str], list[str], list[list[float]], list[list[bool]]]:
    """Rows A (sources), columns B (targets), cells the mean difference ``which`` (``transfer`` or ``random``),
    NaN where a pair was not run (the diagonal always); and whether each difference exceeds the seed spread."""
    chosen = [p for p in pairs if p.sparsity == sparsity]
    sources = sorted({p.source for p in chosen})
    targets = sorted({p.target for p in chosen} | set(sources))
    grid = [[math.nan] * len(targets) for _ in sources]
    separable = [[False] * len(targets) for _ in sources]
    for p in chosen:
        d = getattr(p, which)
        if d is not None:
            i, j = sources.index(p.source), targets.index(p.target)
            grid[i][j], separable[i][j] = d.diff, d.separable
    return sources, targets, grid, separable


def transfer_margins(pairs: list[TransferPair], sparsity: float, which: str = "transfer"
                     ) -> dict[str, tuple[float | None, int, float | None, int]]:
    """Per language: the mean difference ``which`` over the pairs where it gave the mask (as A) and over those where
    it received one (as B), with their counts. Whether some languages are better donors or easier receivers."""
    chosen = [(p.source, p.target, getattr(p, which)) for p in pairs if p.sparsity == sparsity]
    chosen = [(a, b, d.diff) for a, b, d in chosen if d is not None]
    result = {}
    for language in sorted({a for a, _, _ in chosen} | {b for _, b, _ in chosen}):
        given = [d for a, _, d in chosen if a == language]
        received = [d for _, b, d in chosen if b == language]
        result[language] = (mean(given), len(given), mean(received), len(received))
    return result


def transfer_claim(pairs: list[TransferPair], metric: str) -> ClaimVerdict:
    """(d) "a mask found on one language transfers to another with no loss", with the control: comparisons
    ``transfer − parp`` (B from A's mask vs its own start) and ``transfer − transfer-random`` (vs A's random twin)
    per pair; ``figures``: ``sign_test`` and ``control_sign_test`` (lower, non-zero, p) across pairs."""
    moved = [Comparison((TRANSFER, OWN), p.transfer, p.target, p.sparsity, mask_from=p.source)
             for p in pairs if p.transfer is not None]
    if not moved:
        return ClaimVerdict("d", Verdict.NOT_MEASURED, metric)
    twin = [Comparison((TRANSFER, TRANSFER_RANDOM), p.versus_random, p.target, p.sparsity, mask_from=p.source)
            for p in pairs if p.versus_random is not None]
    figures = {"sign_test": sign_test([c.diff for c in moved])}
    if twin:
        figures["control_sign_test"] = sign_test([c.diff for c in twin])
    return ClaimVerdict("d", judge(moved, lower_is_claimed=True), metric, tuple(moved + twin), figures=figures)
