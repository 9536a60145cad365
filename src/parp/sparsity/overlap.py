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
