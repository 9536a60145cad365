"""Scope ``heads``: whole attention heads, the same number in every attention block, by the L2 norm of the head's
weights (its rows of q, k and v and its columns of the output projection); masking only.

The exported model keeps its shape (the wav2vec 2.0 family's attention cannot hold fewer heads in plain
``transformers``: one ``num_attention_heads`` for every layer and no ``prune_heads``), so a pruned head is zeros,
not speed. PARP regrowth: a head with q, k, v rows and output columns all zero gets no gradient, so during the
adjustment only its output columns are zeroed (:meth:`AttentionHeads.adjusting_part`): the head then adds nothing,
while its output columns still get the gradient of its (non-zero) attention output and may grow back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.scopes.base import StructuredSparsifier
from parp.sparsity.targets import layer_linears
from parp.sparsity.validation import validate_sparsity

# child names of the q, k, v and output projections: wav2vec2 / HuBERT / WavLM / data2vec-audio, then conformers
PROJECTIONS = (("q_proj", "k_proj", "v_proj", "out_proj"), ("linear_q", "linear_k", "linear_v", "linear_out"))
HEADS_KEY = "attention_heads"  # Mask.metadata: [[q weight, k weight, v weight, out weight, number of heads], ...]


@dataclass(frozen=True)
class HeadBlock:
    """Weight names of one attention block's projections and its number of heads."""

    q: str
    k: str
    v: str
    out: str
    heads: int

    @property
    def inputs(self) -> tuple[str, str, str]:
        return self.q, self.k, self.v


def head_blocks(model: nn.Module) -> list[HeadBlock]:
    """The attention blocks of every layer of ``model`` (found as in ``layer_linears``) with q/k/v/out linears."""
    parents = dict.fromkeys(name.rsplit(".", 1)[0] for name, _ in layer_linears(model)["attention"])
    blocks = []
    for parent in parents:
        module = model.get_submodule(parent)
        heads = getattr(module, "num_heads", None)
        for names in PROJECTIONS:
            if heads and all(isinstance(getattr(module, n, None), nn.Linear) for n in names):
                blocks.append(HeadBlock(*(f"{parent}.{n}.weight" for n in names), heads=int(heads)))
                break
    if not blocks:
        raise MaskError(f"--scope heads found no attention block with q/k/v/out projections and num_heads in "
                        f"{type(model).__name__}")
    return blocks


def head_scores(params: Mapping[str, torch.Tensor], block: HeadBlock) -> torch.Tensor:
    """L2 norm of every head's weights (float32, shape ``[heads]``)."""
    squares = [params[name].detach().float().square().reshape(block.heads, -1).sum(1) for name in block.inputs]
    out = params[block.out].detach().float().square()
    squares.append(out.reshape(out.shape[0], block.heads, -1).sum((0, 2)))
    return sum(s.to(squares[0].device) for s in squares).sqrt()


def _head_mask(params: Mapping[str, torch.Tensor], block: HeadBlock, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Expand one block's keep-vector over its heads into keep-masks of its four weights."""
    masks = {}
    for name in block.inputs:
        w = params[name]
        masks[name] = keep.to(w.device).repeat_interleave(w.shape[0] // block.heads)[:, None].expand(w.shape).clone()
    w = params[block.out]
    masks[block.out] = keep.to(w.device).repeat_interleave(w.shape[1] // block.heads)[None, :].expand(w.shape).clone()
    return masks


def _num_heads_to_prune(sparsity: float, block: HeadBlock) -> int:
    k = int(round(validate_sparsity(sparsity) * block.heads))
    if k >= block.heads:
        raise MaskError(f"sparsity {sparsity:g} would remove all {block.heads} heads of {block.q.rsplit('.', 2)[0]}")
    return k


class AttentionHeads(StructuredSparsifier):
    name = "heads"
    unit = "whole attention heads (q/k/v rows and output columns)"
    checks_targets = True  # a family without q/k/v/out projections and num_heads fails before training

    def __init__(self):
        self.blocks: list[HeadBlock] | None = None  # found by targets(): a parameter dict does not name its heads

    def targets(self, model: nn.Module, **target_kwargs) -> dict[str, nn.Parameter]:
        self.blocks = head_blocks(model)
        wanted = {n for b in self.blocks for n in (*b.inputs, b.out)}
        return {n: p for n, p in model.named_parameters() if n in wanted}

    def _blocks(self) -> list[HeadBlock]:
        if self.blocks is None:
            raise MaskError("--scope heads: the sparsifier's targets(model) names the heads; call it first")
        return self.blocks

    def _mask(self, params: Mapping[str, torch.Tensor], keeps: list[torch.Tensor]) -> Mask:
        masks: dict[str, torch.Tensor] = {}
        for block, keep in zip(self._blocks(), keeps):
            masks.update(_head_mask(params, block, keep))
        return Mask(masks, {HEADS_KEY: [[b.q, b.k, b.v, b.out, b.heads] for b in self._blocks()]})

    @torch.no_grad()
    def update_mask(self, params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
        keeps = []
        for block in self._blocks():
            scores = head_scores(params, block)
            keep = torch.ones(block.heads, dtype=torch.bool, device=scores.device)
            keep[torch.sort(scores, stable=True).indices[:_num_heads_to_prune(sparsity, block)]] = False
            keeps.append(keep)
        return self._mask(params, keeps)

    def random_mask(self, params: Mapping[str, torch.Tensor], sparsity: float, seed: int = 0) -> Mask:
        gen = torch.Generator().manual_seed(int(seed))
        keeps = []
        for block in self._blocks():
            keep = torch.ones(block.heads, dtype=torch.bool)
            keep[torch.randperm(block.heads, generator=gen)[:_num_heads_to_prune(sparsity, block)]] = False
            keeps.append(keep)
        return self._mask(params, keeps)

    def adjusting_part(self, mask: Mask) -> Mask:
        outs = ({b.out for b in self.blocks} if self.blocks is not None
                else {block[3] for block in mask.metadata.get(HEADS_KEY, [])})
        return Mask({n: k for n, k in mask.masks.items() if n in outs}, mask.metadata, mask.source)
