"""Scopes ``global`` (the paper's: one magnitude ranking across all prunable weights) and ``layer`` (one ranking per
tensor, every tensor at the target)."""

from __future__ import annotations

from typing import Mapping

import torch

from parp.sparsity.mask import Mask
from parp.sparsity.scopes.base import Sparsifier


class GlobalMagnitude(Sparsifier):
    name = "global"

    @torch.no_grad()
    def update_mask(self, params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
        return Mask.magnitude(params, sparsity, scope="global")


class LayerMagnitude(Sparsifier):
    name = "layer"

    @torch.no_grad()
    def update_mask(self, params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
        return Mask.magnitude(params, sparsity, scope="layer")
