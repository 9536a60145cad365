"""How alike two pruning masks are, against chance: the IoU that independent random masks would reach.

Pure mask statistics, shared by ``parp masks compare`` and the report.
"""

from __future__ import annotations

import re


_LAYER = re.compile(r"layers\.(\d+)\.")


def layer_of(name: str) -> str:
    """``...encoder.layers.3.attention.q_proj.weight`` -> ``layer 3``; other parameters keep their name."""
    match = _LAYER.search(name)
    return f"layer {int(match.group(1))}" if match else name


def random_iou(sparsity: float) -> float:
    """Expected IoU of the pruned sets of two independent random masks with the same sparsity."""
    return sparsity / (2 - sparsity) if sparsity < 2 else 1.0


def random_iou_matched(a, b) -> float:
    """Expected IoU of independent random masks with the same PER-TENSOR sparsities as masks ``a`` and ``b``."""
    inter = union = 0.0
    for name in a:
        n = a[name].numel()
        sa, sb = 1 - float(a[name].sum()) / n, 1 - float(b[name].sum()) / n
        inter += sa * sb * n
        union += (sa + sb - sa * sb) * n
    return inter / union if union else 1.0


def layer_iou(a, b) -> dict[str, dict[str, float]]:
    """Per encoder layer (``layer_of``): the IoU of the pruned sets of masks ``a`` and ``b``, and the IoU that
    independent random masks with the same per-tensor sparsities would expect there (``random``).

    Which layers two languages prune alike, against the chance level of that layer's own sparsity."""
    groups: dict[str, list[float]] = {}
    for name, (both, either, pruned_a, pruned_b) in a.pruned_counts(b).items():
        n = a[name].numel()
        sa, sb = pruned_a / n if n else 0.0, pruned_b / n if n else 0.0
        group = groups.setdefault(layer_of(name), [0.0, 0.0, 0.0, 0.0])
        group[0] += both
        group[1] += either
        group[2] += sa * sb * n
        group[3] += (sa + sb - sa * sb) * n
    return {layer: {"iou": g[0] / g[1] if g[1] else 1.0, "random": g[2] / g[3] if g[3] else 1.0}
            for layer, g in groups.items()}
