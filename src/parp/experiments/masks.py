"""``parp masks compare A B ...``: how similar pruning masks are, overall and per encoder layer.

Similarity is measured on the PRUNED sets: IoU = |pruned in both| / |pruned in either|, and the overlap
fractions |pruned in both| / |pruned in A| (and in B). Two independent random masks at sparsity s have an
expected IoU of s / (2 - s), the baseline any "similar subnetworks" claim has to beat.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..sparsity import Mask
from ..sparsity.overlap import layer_of, random_iou_matched


def _stats(both: int, either: int, pruned_a: int, pruned_b: int, total: int) -> dict[str, float]:
    return {"iou": both / either if either else 1.0,
            "overlap_of_a": both / pruned_a if pruned_a else 1.0,  # fraction of A's pruned weights B prunes too
            "overlap_of_b": both / pruned_b if pruned_b else 1.0,
            "sparsity_a": pruned_a / total if total else 0.0, "sparsity_b": pruned_b / total if total else 0.0}


def compare_pair(a, b) -> dict[str, Any]:
    """Overall, per encoder layer and per parameter statistics of two masks over the same parameters."""
    per_parameter, per_layer = {}, {}
    totals = [0, 0, 0, 0, 0]
    for name, counts in a.pruned_counts(b).items():
        n = a[name].numel()
        per_parameter[name] = _stats(*counts, n)
        group = per_layer.setdefault(layer_of(name), [0, 0, 0, 0, 0])
        for i, value in enumerate((*counts, n)):
            group[i] += value
            totals[i] += value
    overall = _stats(*totals)
    overall["random_iou"] = random_iou_matched(a, b)
    return {"overall": overall, "per_layer": {k: _stats(*v) for k, v in per_layer.items()},
            "per_parameter": per_parameter}


def compare_masks(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Every pair of the given mask files, plus the IoU matrix."""
    if len(paths) < 2:
        raise ConfigError("give at least two mask files to compare")
    names = [str(p) for p in paths]  # the same file twice is a pair too (its IoU with itself is 1)
    loaded = {name: Mask.load(name) for name in dict.fromkeys(names)}
    pairs = []
    matrix: list[list[float | None]] = [[None] * len(names) for _ in names]
    for i, j in itertools.combinations(range(len(names)), 2):
        pair = {"a": names[i], "b": names[j], **compare_pair(loaded[names[i]], loaded[names[j]])}
        pairs.append(pair)
        matrix[i][j] = matrix[j][i] = pair["overall"]["iou"]
    for i in range(len(names)):
        matrix[i][i] = 1.0
    return {"masks": names, "sparsity": {n: loaded[n].sparsity() for n in names}, "iou_matrix": matrix,
            "pairs": pairs}


def format_comparison(result: dict[str, Any], per_parameter: bool = False) -> str:
    """Plain-text tables: the pairs overall, then each pair per layer."""
    labels = {name: f"[{i}]" for i, name in reversed(list(enumerate(result["masks"])))}  # a repeat: its first
    lines = [f"[{i}] {n}  (sparsity {result['sparsity'][n]:.4f})" for i, n in enumerate(result["masks"])]
    header = f"{'pair':<9} {'IoU':>7} {'random':>7} {'A in B':>7} {'B in A':>7} {'sp A':>7} {'sp B':>7}"
    lines += ["", "overall (IoU of pruned sets; random = expected IoU of random masks, same per-tensor sparsity)",
              header]
    for pair in result["pairs"]:
        o = pair["overall"]
        lines.append(f"{labels[pair['a']] + labels[pair['b']]:<9} {o['iou']:>7.4f} {o['random_iou']:>7.4f} "
                     f"{o['overlap_of_a']:>7.4f} {o['overlap_of_b']:>7.4f} {o['sparsity_a']:>7.4f} "
                     f"{o['sparsity_b']:>7.4f}")
    for pair in result["pairs"]:
        rows = pair["per_parameter"] if per_parameter else pair["per_layer"]
        width = max(len(k) for k in rows) + 2
        lines += ["", f"{labels[pair['a']]} vs {labels[pair['b']]} per {'parameter' if per_parameter else 'layer'}",
                  f"{'':<{width}} {'IoU':>7} {'A in B':>7} {'B in A':>7} {'sp A':>7} {'sp B':>7}"]
        for key, s in rows.items():
            lines.append(f"{key:<{width}} {s['iou']:>7.4f} {s['overlap_of_a']:>7.4f} {s['overlap_of_b']:>7.4f} "
                         f"{s['sparsity_a']:>7.4f} {s['sparsity_b']:>7.4f}")
    return "\n".join(lines)


def masks_main(argv: Sequence[str]) -> None:
    """``parp masks compare A B ... [--json FILE] [--per-parameter]``."""
    parser = argparse.ArgumentParser(prog="parp masks", description="Inspect and compare pruning mask files.")
    sub = parser.add_subparsers(dest="action", required=True)
    compare = sub.add_parser("compare", help="IoU and overlap of the pruned sets, overall and per layer.")
    compare.add_argument("masks", nargs="+", help="Mask files (.safetensors written by parp prune / sweep).")
    compare.add_argument("--json", default=None, metavar="FILE", help="Also write all statistics to FILE.")
    compare.add_argument("--per-parameter", action="store_true", help="Print per parameter instead of per layer.")
    args = parser.parse_args(list(argv))
    result = compare_masks(args.masks)
    print(format_comparison(result, per_parameter=args.per_parameter))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"\nwrote {args.json}")
