"""Pick the fast form of a pruned model folder: what ``parp evaluate`` / ``parp transcribe`` run.

A folder written by ``parp prune`` carries its mask (``mask.safetensors``). Whole feed-forward neurons
(``--scope ffn``) are removed from the loaded model (same outputs, less compute); a 2:4 mask runs on the
semi-structured sparse kernels where the GPU and dtype allow it; any other model runs as loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from parp.export.compact import compact_if_ffn_
from parp.inference.semi_structured import (fallback_note, is_2_4, semi_structured_unsupported,
                                            to_semi_structured_)
from parp.sparsity.mask import Mask


@dataclass
class FastForm:
    model: nn.Module
    form: str  # "dense" | "ffn-compact" | "2:4-sparse" | "masked"
    note: str | None = None  # one line for the user when a faster form exists but cannot run here


def fast_form(model: nn.Module, model_dir, dtype: torch.dtype | None = None) -> FastForm:
    """The fastest exact form of ``model`` (loaded from ``model_dir``) on the device it sits on.

    ``dtype`` is the precision it will run in (evaluate's autocast dtype; default: its weights' dtype). A 2:4
    model whose kernels can run in that dtype is cast to it first (the kernels take half-precision weights).
    """
    path = Path(model_dir) / "mask.safetensors"
    if not path.is_file():
        return FastForm(model, "dense")
    mask = Mask.load(path)
    mask.check_compatible(model)
    if not mask.num_pruned():
        return FastForm(model, "dense")
    compact = compact_if_ffn_(model, mask)
    if compact is not None:
        return FastForm(compact, "ffn-compact")
    if is_2_4(mask):
        weight = next(model.parameters())
        reason = semi_structured_unsupported(weight.device, dtype or weight.dtype)
        if reason is None and to_semi_structured_(model.to(dtype or weight.dtype), mask.to(weight.device)):
            return FastForm(model, "2:4-sparse")
        return FastForm(model, "masked", fallback_note(reason or "no linear of this model fits the kernels' shapes"))
    return FastForm(model, "masked")
