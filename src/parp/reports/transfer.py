"""The transfer matrix's numbers: how much a language B loses when PARP starts from language A's OMP mask instead
of its own start, and how much from a random mask with A's per-tensor sparsities (the control).

Per ordered pair (A, B) and sparsity: error(B | mask A) - error(B | own), error(B | random twin of A) - error(B |
own) and error(B | mask A) - error(B | random twin), each the difference of the means over seeds with the larger
seed spread of its two sides (``parp.reports.tables.difference``), so a difference is called only where it
exceeds that spread. Rows come from ``results.csv``: the ``transfer`` / ``transfer-random`` cells (``mask_from``
= A) and B's own ``parp`` cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .tables import Difference, Tables, _mean, difference

TRANSFER, TRANSFER_RANDOM = "transfer", "transfer-random"  # the methods parp.experiments.transfer writes
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
        pairs.append(TransferPair(source, target, s, _mean(own), difference(moved, own), difference(twin, own),
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
        result[language] = (_mean(given), len(given), _mean(received), len(received))
    return result


def _counts(points: list[Difference]) -> str:
    worse = sum(p.separable and p.diff > 0 for p in points)
    better = sum(p.separable and p.diff < 0 for p in points)
    return f"{worse} worse and {better} better beyond the seed spread, {len(points) - worse - better} within it"


def sign_test(diffs: list[float]) -> tuple[int, int, float]:
    """(lower, non-zero, two-sided exact sign-test p) over pairs: whether differences too small for the seed spread
    of any one pair still lean one way across many. Pairs sharing a language are not independent, so p is optimistic."""
    lower, n = sum(d < 0 for d in diffs), sum(d != 0 for d in diffs)
    tail = sum(math.comb(n, k) for k in range(min(lower, n - lower) + 1)) / 2**n if n else 1.0
    return lower, n, min(1.0, 2 * tail)


def _across_pairs(points: list[Difference]) -> str:
    lower, n, p = sign_test([d.diff for d in points])
    return f"{lower} of {n} lower, sign test over pairs p = {p:.2g}"


def transfer_claim(pairs: list[TransferPair], metric: str) -> str:
    """The verdict on "a mask found on one language transfers to another with no loss", with the control."""
    moved = [p.transfer for p in pairs if p.transfer is not None]
    if not moved:
        return ("Not measured (the sweep needs transfer: true, with PARP and OMP cells of every language it "
                "transfers between).")
    label = metric.upper()
    verdict = Tables.verdict(moved, lower_is_claimed=True)
    twin = [p.versus_random for p in pairs if p.versus_random is not None]
    text = (f"{verdict}: {label}(B | mask of A) − {label}(B | own start) over {len(moved)} ordered pairs: "
            f"{_counts(moved)} (mean {_mean(d.diff for d in moved):+.3f}; {_across_pairs(moved)})")
    if twin:
        text += (f"; {label}(B | mask of A) − {label}(B | random twin of A, same per-tensor sparsities): "
                 f"{_counts(twin)} (mean {_mean(d.diff for d in twin):+.3f}; {_across_pairs(twin)})")
    return text + "."
