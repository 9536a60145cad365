"""Physically remove pruned feed-forward neurons: a plain Hugging Face model with a smaller ``intermediate_size``.

Only a mask of whole neurons with the same count in every layer (``--scope ffn``) can be removed this way: the
config has one ``intermediate_size`` for all layers. The result computes the same function as the masked model
(a pruned neuron has fc1 row, bias and fc2 column all zero, so it adds exactly nothing) and loads with
``AutoModelForCTC.from_pretrained`` alone.

Every family whose feed-forward blocks read one ``intermediate_size`` works, conformers' two blocks per layer
included (both lose the same number of neurons). Attention heads are not removed: wav2vec2, HuBERT, WavLM and
data2vec-audio in transformers have no
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
from parp.sparsity.targets import layer_linears
from parp.sparsity.structured import kept_neurons, mask_ffn_blocks


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
    blocks = {block.prefix: block for block in mask_ffn_blocks(mask)}
    in_model = len(layer_linears(model)["ffn"]) // 2
    if in_model != len(kept):
        raise MaskError(f"the mask covers {len(kept)} feed-forward blocks but the model has {in_model}")
    mask.check_compatible(model)
    linears = dict(model.named_modules())
    if any(linears.get(n) is None for b in blocks.values() for n in (b.fc1_module, b.fc2_module)):
        raise MaskError("the mask names feed-forward linears the model does not have")
    for prefix, index in kept.items():
        block = blocks[prefix]
        _replace(model, block.fc1_module, _shrink(linears[block.fc1_module], index, dim=0))
        _replace(model, block.fc2_module, _shrink(linears[block.fc2_module], index, dim=1))
    _set_intermediate_size(model.config, widths.pop())
    return model


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _set_intermediate_size(config, width: int) -> None:
    """Composite configs (Parakeet, LASR, Granite, OmniASR) keep the encoder's width in a sub-config."""
    for sub in ("encoder_config", "audio_config"):
        if hasattr(getattr(config, sub, None), "intermediate_size"):
            setattr(getattr(config, sub), "intermediate_size", width)
            return
    config.intermediate_size = width


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
