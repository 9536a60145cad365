"""Which encoder layers the languages' masks share: per layer, the IoU of the pruned sets of every pair of
languages (same method, sparsity and seed; mean over seeds), summarised across pairs as mean, min and max, next to
the IoU that random masks with the same per-tensor sparsities would reach in that layer, and the IoU of two seeds of
one language (what training noise alone leaves shared).

A layer whose IoU stays near its random level is pruned language-specifically; one far above it is shared.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any, Mapping

from ..sparsity.overlap import layer_iou
from .tables import layer_key


def layer_iou_summary(masks: Mapping[str, Mapping[int, Any]]) -> dict[str, Any] | None:
    """``masks``: language -> seed -> Mask. Per encoder layer (``layer N`` only; other parameters are left out):
    mean / min / max over language pairs of the seed-mean IoU, the mean random-mask IoU, and the mean IoU of two
    seeds of one language (``seeds``; None where no language has two). None with fewer than two languages sharing
    a seed."""
    per_pair: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = {}
    for a, b in itertools.combinations(sorted(masks), 2):
        for seed in sorted(set(masks[a]) & set(masks[b])):
            for layer, stats in layer_iou(masks[a][seed], masks[b][seed]).items():
                if layer.startswith("layer "):
                    per_pair.setdefault((a, b), {}).setdefault(layer, []).append((stats["iou"], stats["random"]))
    if not per_pair:
        return None
    # two seeds of one language, per layer: the overlap training noise alone leaves (None without a second seed)
    per_seed_pair: dict[str, list[float]] = {}
    for language, seeded in masks.items():
        for x, y in itertools.combinations(sorted(seeded), 2):
            for layer, stats in layer_iou(seeded[x], seeded[y]).items():
                if layer.startswith("layer "):
                    per_seed_pair.setdefault(layer, []).append(stats["iou"])
    layers = sorted({layer for values in per_pair.values() for layer in values}, key=layer_key)
    summary: dict[str, Any] = {"layers": layers, "pairs": len(per_pair), "mean": [], "min": [], "max": [],
                               "random": [], "seeds": [] if per_seed_pair else None}
    for layer in layers:
        ious = [statistics.fmean(i for i, _ in v[layer]) for v in per_pair.values() if layer in v]
        randoms = [statistics.fmean(r for _, r in v[layer]) for v in per_pair.values() if layer in v]
        summary["mean"].append(statistics.fmean(ious))
        summary["min"].append(min(ious))
        summary["max"].append(max(ious))
        summary["random"].append(statistics.fmean(randoms))
        if per_seed_pair:
            summary["seeds"].append(statistics.fmean(per_seed_pair[layer]) if layer in per_seed_pair else float("nan"))
    return summary
