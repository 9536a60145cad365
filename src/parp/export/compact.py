"""Physically remove pruned feed-forward neurons: a plain Hugging Face model with a smaller ``intermediate_size``.

Only a mask of whole neurons with the same count in every layer (``--scope ffn``) can be removed this way: the
config has one ``intermediate_size`` for all layers. The result computes the same function as the masked model
(a pruned neuron has fc1 row, bias and fc2 column all zero, so it adds exactly nothing) and loads with
``AutoModelForCTC.from_pretrained`` alone.

Attention heads are not removed: wav2vec2, HuBERT, WavLM and data2vec-audio in transformers have no
``prune_heads`` support (no ``_prune_heads``, no ``pruned_heads`` in their configs), so a folder with fewer
heads in some layers would not load in plain transformers.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.structured import kept_neurons


def _shrink(layer: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    new = prune_linear_layer(layer, index, dim=dim)
    return new.to(dtype=layer.weight.dtype)


@torch.no_grad()
def compact_ffn_(model: nn.Module, mask: Mask) -> nn.Module:
    """Remove the neurons ``mask`` prunes from ``model`` in place and shrink ``config.intermediate_size``."""
    kept = kept_neurons(mask)
    if kept is None:
        raise MaskError("only a mask of whole feed-forward neurons (--scope ffn) can be removed from the model")
    widths = {int(idx.numel()) for idx in kept.values()}
    if len(widths) != 1:
        raise MaskError(f"layers keep different numbers of neurons ({sorted(widths)}): one intermediate_size "
                        "cannot describe them")
    layers = [m for n, m in model.named_modules() if n.endswith("feed_forward") and hasattr(m, "intermediate_dense")]
    if len(layers) != len(kept):
        raise MaskError(f"the mask covers {len(kept)} feed-forward blocks but the model has {len(layers)}")
    mask.check_compatible(model)
    modules = dict(model.named_modules())
    for prefix, index in kept.items():
        block = modules[prefix]
        block.intermediate_dense = _shrink(block.intermediate_dense, index, dim=0)
        block.output_dense = _shrink(block.output_dense, index, dim=1)
    model.config.intermediate_size = widths.pop()
    return model


def compact_if_ffn_(model: nn.Module, mask: Mask) -> nn.Module | None:
    """``model`` with its pruned neurons removed (in place) when ``mask`` prunes whole feed-forward neurons, the
    same number in every layer; None for any other mask (the model is left as it is)."""
    kept = kept_neurons(mask)
    if kept is None or len({int(i.numel()) for i in kept.values()}) != 1:
        return None
    mask.apply_(model)  # the saved weights already carry it; applying makes removal exact by construction
    return compact_ffn_(model, mask)


def save_compact_model(model: nn.Module, mask: Mask, out_dir) -> Path:
    """Save a copy of ``model`` with the pruned neurons removed as a plain HF folder (``model`` is untouched)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    compact = compact_ffn_(copy.deepcopy(model), mask)
    kwargs = {}
    if "safe_serialization" in inspect.signature(compact.save_pretrained).parameters:
        kwargs["safe_serialization"] = True
    compact.save_pretrained(out_dir, **kwargs)
    return out_dir
