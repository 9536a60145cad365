"""Scope ``ffn``: whole feed-forward neurons, the same number per block (the recipe and why PARP silences only the
fc1 side: ``parp.sparsity.structured``); also exported with the neurons removed (``parp.export.compact``)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from parp.sparsity.mask import Mask
from parp.sparsity.scopes.base import StructuredSparsifier
from parp.sparsity.structured import ffn_mask, ffn_parameters, random_ffn_mask, silencing_part


class FFNNeurons(StructuredSparsifier):
    name = "ffn"
    unit = "whole feed-forward neurons (their fc1 bias included)"
    exports_compact = True

    def targets(self, model: nn.Module, **target_kwargs) -> dict[str, nn.Parameter]:
        return ffn_parameters(model)

    @torch.no_grad()
    def update_mask(self, params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
        return ffn_mask(params, sparsity)

    def random_mask(self, params: Mapping[str, torch.Tensor], sparsity: float, seed: int = 0) -> Mask:
        return random_ffn_mask(params, sparsity, seed=seed)

    def adjusting_part(self, mask: Mask) -> Mask:
        return silencing_part(mask)
