"""Structured scope ``ffn``: prune whole feed-forward neurons, the same number in every encoder layer.

Neuron ``j`` of a layer is row ``j`` of ``intermediate_dense`` (fc1) with its bias ``b1[j]`` and column ``j``
of ``output_dense`` (fc2). Its score is ``||(fc1[j, :], b1[j])||_2 * ||fc2[:, j]||_2``: the Frobenius norm of
the rank-one path the neuron adds (fc2 column times fc1 row), so a neuron is unimportant when either side is
small. Each layer loses exactly ``round(sparsity * intermediate_size)`` neurons, lowest scores first (ties: the
lower index goes first), so every layer keeps the same width and the pruned model can be exported as a plain
Hugging Face model with a smaller ``intermediate_size`` (``parp.export.compact``).

The result is an ordinary :class:`Mask` over the fc1 weight, fc1 bias and fc2 weight of every layer whose
zeros are whole rows / entries / columns; PARP's re-prune simply computes a new one from the current weights.

PARP regrowth: a neuron with fc1 row, bias and fc2 column all zero is a saddle point (no gradient reaches any
of them), so it could never grow back. During PARP's adjustment only the fc1 side is zeroed
(:func:`silencing_part`): ``gelu(0) = 0`` makes the neuron's output exactly zero, as if removed, while
``gelu'(0) = 1/2`` and the intact fc2 column let gradient reach its fc1 row, which may grow back. The final
re-prune zeroes the fc2 column too. (With a ReLU encoder ``relu'(0) = 0``: still exact, but no regrowth.)

Why no attention-head scope: the exported folder must load in plain ``transformers``, and its wav2vec 2.0 /
HuBERT / WavLM / data2vec-audio attention cannot hold fewer heads. ``Wav2Vec2Attention`` fixes
``head_dim = hidden_size // num_attention_heads`` and q/k/v/out as ``hidden_size x hidden_size`` linears, one
``num_attention_heads`` for every layer, and these models implement no ``prune_heads``. Removing heads would
need custom modelling code (or zeros that no kernel skips), which is what this scope exists to avoid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.targets import resolve_parameters
from parp.sparsity.validation import validate_sparsity

FFN_PARAMETER = re.compile(
    r"^(?P<block>(.*\.)?encoder\.layers\.\d+\.feed_forward)\.(?P<linear>intermediate_dense|output_dense)"
    r"\.(?P<kind>weight|bias)$"
)


@dataclass(frozen=True)
class FFNBlock:
    """Parameter names of one feed-forward block (``fc1_bias`` is None for a bias-free fc1)."""

    prefix: str
    fc1_weight: str
    fc1_bias: str | None
    fc2_weight: str

    @property
    def names(self) -> list[str]:
        return [n for n in (self.fc1_weight, self.fc1_bias, self.fc2_weight) if n is not None]


def ffn_blocks(names) -> list[FFNBlock]:
    """The feed-forward blocks found among parameter ``names``, in order of appearance."""
    found: dict[str, dict[str, str]] = {}
    for name in names:
        m = FFN_PARAMETER.match(name)
        if m and not (m["linear"] == "output_dense" and m["kind"] == "bias"):  # fc2's bias has no neuron axis
            found.setdefault(m["block"], {})[f"{m['linear']}.{m['kind']}"] = name
    blocks = []
    for prefix, parts in found.items():
        if "intermediate_dense.weight" not in parts or "output_dense.weight" not in parts:
            raise MaskError(f"feed-forward block {prefix!r} lacks fc1 or fc2 weights: cannot prune its neurons")
        blocks.append(FFNBlock(prefix, parts["intermediate_dense.weight"], parts.get("intermediate_dense.bias"),
                               parts["output_dense.weight"]))
    return blocks


def ffn_parameters(model_or_params) -> dict[str, torch.Tensor]:
    """fc1 weight, fc1 bias and fc2 weight of every encoder layer: the targets of ``--scope ffn``."""
    params = resolve_parameters(model_or_params)
    blocks = ffn_blocks(params)
    if not blocks:
        raise MaskError("--scope ffn found no encoder.layers.N.feed_forward.{intermediate,output}_dense in the model")
    wanted = {n for b in blocks for n in b.names}
    return {n: p for n, p in params.items() if n in wanted}


def neuron_scores(params: Mapping[str, torch.Tensor], block: FFNBlock) -> torch.Tensor:
    """The documented score of every neuron of ``block`` (float32, shape ``[intermediate_size]``)."""
    w1 = params[block.fc1_weight].detach().float()
    w2 = params[block.fc2_weight].detach().float()
    if w1.shape[0] != w2.shape[1]:
        raise MaskError(f"{block.prefix}: fc1 has {w1.shape[0]} outputs but fc2 has {w2.shape[1]} inputs")
    fc1 = w1.square().sum(1)
    if block.fc1_bias is not None:
        fc1 = fc1 + params[block.fc1_bias].detach().float().square().to(fc1.device)
    return fc1.sqrt() * w2.square().sum(0).sqrt().to(fc1.device)


def _neuron_mask(params: Mapping[str, torch.Tensor], block: FFNBlock, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Expand one layer's keep-vector over its neurons into keep-masks of its three parameters."""
    w1, w2 = params[block.fc1_weight], params[block.fc2_weight]
    keep = keep.to(w1.device)
    masks = {block.fc1_weight: keep[:, None].expand(w1.shape).clone(),
             block.fc2_weight: keep[None, :].expand(w2.shape).clone().to(w2.device)}
    if block.fc1_bias is not None:
        masks[block.fc1_bias] = keep.clone().to(params[block.fc1_bias].device)
    return masks


def _num_neurons_to_prune(sparsity: float, width: int, prefix: str) -> int:
    k = int(round(sparsity * width))
    if k >= width:
        raise MaskError(f"sparsity {sparsity:g} would remove all {width} neurons of {prefix}")
    return k


def ffn_mask(params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
    """Prune the ``round(sparsity * width)`` lowest-norm neurons of every feed-forward block in ``params``."""
    sparsity = validate_sparsity(sparsity)
    masks: dict[str, torch.Tensor] = {}
    for block in ffn_blocks(params) or _no_blocks():
        norms = neuron_scores(params, block)
        k = _num_neurons_to_prune(sparsity, norms.numel(), block.prefix)
        keep = torch.ones(norms.numel(), dtype=torch.bool, device=norms.device)
        keep[torch.sort(norms, stable=True).indices[:k]] = False
        masks.update(_neuron_mask(params, block, keep))
    return Mask(masks)


def random_ffn_mask(params: Mapping[str, torch.Tensor], sparsity: float, seed: int = 0) -> Mask:
    """The random baseline of ``--scope ffn``: the same number of neurons per layer, chosen at random (seeded)."""
    sparsity = validate_sparsity(sparsity)
    gen = torch.Generator().manual_seed(int(seed))
    masks: dict[str, torch.Tensor] = {}
    for block in ffn_blocks(params) or _no_blocks():
        width = params[block.fc1_weight].shape[0]
        keep = torch.ones(width, dtype=torch.bool)
        keep[torch.randperm(width, generator=gen)[:_num_neurons_to_prune(sparsity, width, block.prefix)]] = False
        masks.update(_neuron_mask(params, block, keep))
    return Mask(masks)


def silencing_part(mask: Mask) -> Mask:
    """The fc1 side (weight rows and bias) of a neuron mask: what PARP zeroes while neurons may grow back."""
    fc2 = {b.fc2_weight for b in ffn_blocks(mask.masks)}
    return Mask({n: k for n, k in mask.masks.items() if n not in fc2}, mask.metadata, mask.source)


def _no_blocks():
    raise MaskError("no feed-forward blocks (encoder.layers.N.feed_forward.*_dense) among the parameters to prune")


def kept_neurons(mask: Mask) -> dict[str, torch.Tensor] | None:
    """``{block prefix: indices of kept neurons}`` if ``mask`` prunes only whole FFN neurons, else None.

    Whole means: fc1 row, fc1 bias entry and fc2 column all pruned or all kept, and nothing else in the mask
    pruned. A mask over other parameters that keeps them entirely still qualifies.
    """
    blocks = ffn_blocks(mask.masks)
    covered = {n for b in blocks for n in b.names}
    if not blocks or any(not bool(k.all()) for n, k in mask.masks.items() if n not in covered):
        return None
    kept = {}
    for block in blocks:
        row = mask[block.fc1_weight]
        keep = row.all(1)
        if not torch.equal(row.any(1), keep):
            return None
        for name, expanded in _neuron_mask(mask.masks, block, keep).items():
            if not torch.equal(mask[name], expanded.to(mask[name].device)):
                return None
        kept[block.prefix] = keep.nonzero().squeeze(1).cpu()
    return kept
