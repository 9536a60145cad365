"""Scope ``N:M`` (e.g. ``2:4``): keep the ``n`` largest of every ``m`` consecutive weights; the scope fixes the
sparsity (1 - n/m), and 2:4 runs on sparse kernels on a CUDA 8.0+ GPU (``parp.inference.semi_structured``)."""

from __future__ import annotations

from typing import Mapping

import torch

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.scopes.base import Sparsifier
from parp.sparsity.validation import validate_n_m


class NMSparsifier(Sparsifier):
    sets_own_sparsity = True
    checks_targets = True
    weight_masks = False  # a fixed pattern, not a ranking to compare or transfer

    def __init__(self, n: int, m: int):
        self.n, self.m = validate_n_m(n, m)
        self.name = f"{self.n}:{self.m}"

    @classmethod
    def parse(cls, scope: str) -> NMSparsifier | None:
        """``"2:4"`` -> the 2:4 sparsifier; a name that is not two integers -> None (a bad pair: MaskError)."""
        parts = scope.split(":")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return cls(int(parts[0]), int(parts[1]))
        return None

    @torch.no_grad()
    def update_mask(self, params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
        return Mask.n_m(params, self.n, self.m)

    @torch.no_grad()
    def check_targets(self, params: Mapping[str, torch.Tensor]) -> None:
        try:
            Mask.n_m(params, self.n, self.m)
        except MaskError as exc:
            raise MaskError(f"--scope {self.name}: {exc}") from None
