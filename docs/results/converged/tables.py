"""Print the README's tables for one grid's records: each method and target with its selected and unselected CER
per seed, and claims (a) and (b) on both scores by the noise rule (``parp.reports.stats``: a difference counts only
where it exceeds the larger standard deviation of the two sides).

    python docs/results/converged/tables.py docs/results/converged/records/mboshi-1h [LANGUAGE]

Why a script next to ``parp report``: the report judges one score; this README sets the two side by side, and
its tables are regenerated from the records rather than typed.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from parp.reports.stats import difference, mean, std
from parp.results import read_results

NAMES = {"none": "unpruned", "parp": "PARP", "omp": "OMP", "mpi": "MPI", "imp": "IMP"}


def verdict(a: list[float], b: list[float]) -> str:
    d = difference(a, b)
    if d is None or d.spread is None:
        return "–" if d is None else f"{d.diff:+.4f} (one seed): not separable"
    said = f"{d.diff:+.4f} (spread {d.spread:.4f}): "  # four digits: a verdict at the edge shows as one
    if not d.separable:
        return said + "not separable"
    return said + ("PARP better" if d.diff < 0 else "PARP worse")


def main(records: Path, language: str | None = None) -> None:
    rows = [r for r in read_results(records) if not r.get("mask_from") and language in (None, r["language"])]
    unselected = {}
    if (records / "unselected.csv").is_file():
        with open(records / "unselected.csv", encoding="utf-8", newline="") as f:
            unselected = {r["cell"]: float(r["unselected_cer"]) for r in csv.DictReader(f)}
    groups: dict[tuple[str, float], dict[int, dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["sparsity_target"]), {})[r["seed"]] = r
    seeds = sorted({r["seed"] for r in rows})
    order = sorted(groups, key=lambda k: (k[1], list(NAMES).index(k[0]) if k[0] in NAMES else 9))

    def fmt(values: list) -> str:
        return " / ".join("–" if v is None else f"{v:.3f}" for v in values)

    def spread(values: list) -> str:
        values = [v for v in values if v is not None]
        return "–" if not values else f"{mean(values):.3f}" + (f" ± {std(values):.3f}" if len(values) > 1 else "")

    scores = {}
    print(f"| method | target | selected CER, seeds {' / '.join(map(str, seeds))} | mean ± std | unselected CER | "
          "mean ± std | updates | best update |")
    print("|---|---|---|---|---|---|---|---|")
    for key in order:
        cells = [groups[key].get(s) for s in seeds]
        selected = [c["cer"] if c else None for c in cells]
        held_out = [unselected.get(c["cell"]) if c else None for c in cells]
        scores[key] = ([v for v in selected if v is not None], [v for v in held_out if v is not None])
        print(f"| {NAMES.get(key[0], key[0])} | {key[1] * 100:.0f} % | {fmt(selected)} | {spread(selected)} | "
              f"{fmt(held_out)} | {spread(held_out)} | {' / '.join(str(c['finetune_steps']) if c else '–' for c in cells)} | "
              f"{' / '.join(str(c.get('best_step')) if c else '–' for c in cells)} |")
    print()
    print("| claim | target | on the selected utterances | on the unselected utterances |")
    print("|---|---|---|---|")
    targets = sorted({s for m, s in groups if m == "parp"})
    for claim, reference in (("(a) PARP − OMP, at half OMP's updates", "omp"), ("(b) PARP − unpruned", "none")):
        for i, s in enumerate(targets):
            other = (reference, 0.0 if reference == "none" else s)
            if other not in scores:
                continue
            parp = scores[("parp", s)]
            print(f"| {claim if i == 0 else ''} | {s * 100:.0f} % | {verdict(parp[0], scores[other][0])} | "
                  f"{verdict(parp[1], scores[other][1])} |")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: tables.py RECORDS_FOLDER [LANGUAGE]")
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else None)
