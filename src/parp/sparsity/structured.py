"""Structured scope ``ffn``: prune whole feed-forward neurons, the same number in every feed-forward block.

The blocks are the feed-forward pairs :func:`parp.sparsity.targets.layer_linears` finds in every CTC family (one per
layer; two in a conformer layer; ``intermediate_dense``/``output_dense``, ``linear1``/``linear2``, SEW-D's
``intermediate.dense``/``output.dense``); a neuron mask names its blocks in its metadata (``BLOCKS_KEY``).
Neuron ``j`` of a block is row ``j`` of fc1 with its bias ``b1[j]`` and column ``j`` of fc2. Its score is
``||(fc1[j, :], b1[j])||_2 * ||fc2[:, j]||_2``: the Frobenius norm of the rank-one path the neuron adds (fc2
column times fc1 row), so a neuron is unimportant when either side is small. Each block loses exactly
``round(sparsity * intermediate_size)`` neurons, lowest scores first (ties: the lower index goes first), so every
block keeps the same width and the pruned model can be exported as a plain
Hugging Face model with a smaller ``intermediate_size`` (``parp.export.compact``).

The result is an ordinary :class:`Mask` over the fc1 weight, fc1 bias and fc2 weight of every layer whose
zeros are whole rows / entries / columns; PARP's re-prune simply computes a new one from the current weights.

PARP regrowth: a neuron with fc1 row, bias and fc2 column all zero is a saddle point (no gradient reaches any
of them), so it could never grow back. During PARP's adjustment only the fc1 side is zeroed
(:func:`silencing_part`): ``gelu(0) = 0`` makes the neuron's output exactly zero, as if removed, while
``gelu'(0) = 1/2`` and the intact fc2 column let gradient reach its fc1 row, which may grow back. The final
re-prune zeroes the fc2 column too. (With a ReLU encoder ``relu'(0) = 0``: still exact, but no regrowth.)

Why attention heads are masked only (``--scope heads``, ``parp.sparsity.scopes.heads``), never removed like
neurons: the exported folder must load in plain ``transformers``, and its wav2vec 2.0 / HuBERT / WavLM /
data2vec-audio attention cannot hold fewer heads. ``Wav2Vec2Attention`` fixes
``head_dim = hidden_size // num_attention_heads`` and q/k/v/out as ``hidden_size x hidden_size`` linears, one
``num_attention_heads`` for every layer, and these models implement no ``prune_heads``. Removing heads would
need custom modelling code, which is what this scope exists to avoid; a head scope gives zeros no kernel skips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.targets import layer_linears, resolve_parameters
from parp.sparsity.validation import validate_sparsity

# the wav2vec2-style names: how a mask file without the blocks in its metadata (older parp) names its FFN blocks
FFN_PARAMETER = re.compile(
    r"^(?P<block>(.*\.)?encoder\.layers\.\d+\.feed_forward)\.(?P<linear>intermediate_dense|output_dense)"
    r"\.(?P<kind>weight|bias)$"
)
BLOCKS_KEY = "ffn_blocks"  # Mask.metadata: [[fc1 weight, fc1 bias or None, fc2 weight], ...]


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

    @property
    def fc1_module(self) -> str:
        return self.fc1_weight.rsplit(".", 1)[0]

    @property
    def fc2_module(self) -> str:
        return self.fc2_weight.rsplit(".", 1)[0]


def _block(fc1_weight: str, fc1_bias: str | None, fc2_weight: str) -> FFNBlock:
    """A block named by the longest module path its two linears share (``...feed_forward``, ``...ffn1``, a layer)."""
    a, b = fc1_weight.split("."), fc2_weight.split(".")
    common = []
    for x, y in zip(a, b):
        if x != y:
            break
        common.append(x)
    return FFNBlock(".".join(common), fc1_weight, fc1_bias, fc2_weight)


def ffn_blocks(params: Mapping[str, torch.Tensor]) -> list[FFNBlock]:
    """The feed-forward blocks of ``params``, a dict of FFN parameters only (:func:`ffn_parameters`) in model order:
    each fc1 weight ``[k, width]`` (then its bias ``[k]``, if any) followed by its fc2 weight ``[width, k]``."""
    blocks, fc1, bias = [], None, None
    for name, tensor in params.items():
        shape = tuple(tensor.shape)
        if fc1 is not None and len(shape) == 1 and bias is None and shape == fc1[1][:1] and name.endswith(".bias"):
            bias = name
        elif fc1 is not None and len(shape) == 2 and shape == fc1[1][::-1]:
            blocks.append(_block(fc1[0], bias, name))
            fc1, bias = None, None
        elif len(shape) == 2:
            fc1, bias = (name, shape), None
    return blocks


def mask_ffn_blocks(mask: Mask) -> list[FFNBlock]:
    """The blocks a neuron mask covers: from its metadata (written by :func:`ffn_mask`), else the wav2vec2 names."""
    if BLOCKS_KEY in mask.metadata:
        return [_block(*names) for names in mask.metadata[BLOCKS_KEY] if all(n in mask.masks for n in names if n)]
    found: dict[str, dict[str, str]] = {}
    for name in mask.masks:
        m = FFN_PARAMETER.match(name)
        if m and not (m["linear"] == "output_dense" and m["kind"] == "bias"):  # fc2's bias has no neuron axis
            found.setdefault(m["block"], {})[f"{m['linear']}.{m['kind']}"] = name
    return [FFNBlock(prefix, parts["intermediate_dense.weight"], parts.get("intermediate_dense.bias"),
                     parts["output_dense.weight"])
            for prefix, parts in found.items() if {"intermediate_dense.weight", "output_dense.weight"} <= set(parts)]


def ffn_parameters(model_or_params) -> dict[str, torch.Tensor]:
    """fc1 weight, fc1 bias and fc2 weight of every feed-forward block of every encoder layer (both blocks of a
    conformer layer), found as in :func:`parp.sparsity.targets.layer_linears`: the targets of ``--scope ffn``."""
    if not isinstance(model_or_params, nn.Module):  # a dict of parameters: the wav2vec2 names
        params = resolve_parameters(model_or_params)
        wanted = {n for b in mask_ffn_blocks(Mask.ones(params)) for n in b.names}
        if not wanted:
            raise MaskError("--scope ffn found no encoder.layers.N.feed_forward.{intermediate,output}_dense")
        return {n: p for n, p in params.items() if n in wanted}
    linears = layer_linears(model_or_params)["ffn"]
    if not linears:
        raise MaskError(f"--scope ffn found no feed-forward pair (nn.Linear width -> k -> width) in the layers of "
                        f"{type(model_or_params).__name__}")
    wanted = set()
    for index, (name, module) in enumerate(linears):
        wanted.add(f"{name}.weight")
        if index % 2 == 0 and module.bias is not None:  # fc1's bias is part of the neuron; fc2's is not
            wanted.add(f"{name}.bias")
    return {n: p for n, p in model_or_params.named_parameters() if n in wanted}


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
    return Mask(masks, {BLOCKS_KEY: _blocks_metadata(params)})


def _blocks_metadata(params) -> list[list[str | None]]:
    return [[b.fc1_weight, b.fc1_bias, b.fc2_weight] for b in ffn_blocks(params)]


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
    return Mask(masks, {BLOCKS_KEY: _blocks_metadata(params)})


def silencing_part(mask: Mask) -> Mask:
    """The fc1 side (weight rows and bias) of a neuron mask: what PARP zeroes while neurons may grow back."""
    fc2 = {b.fc2_weight for b in mask_ffn_blocks(mask)}
    return Mask({n: k for n, k in mask.masks.items() if n not in fc2}, mask.metadata, mask.source)


def _no_blocks():
    raise MaskError("no feed-forward blocks (fc1 [k, width] then fc2 [width, k]) among the parameters to prune")


def kept_neurons(mask: Mask) -> dict[str, torch.Tensor] | None:
    """``{block prefix: indices of kept neurons}`` if ``mask`` prunes only whole FFN neurons, else None.

    Whole means: fc1 row, fc1 bias entry and fc2 column all pruned or all kept, and nothing else in the mask
    pruned. A mask over other parameters that keeps them entirely still qualifies.
    """
    blocks = mask_ffn_blocks(mask)
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
