"""Prunable targets, the :class:`Mask` object and a plain functional front.

Every pruning method (OMP, IMP, PARP, random, N:M) builds a :class:`Mask` over
``prunable_parameters(model)`` and applies it; this module is the short way to do that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.targets import PRESETS, prunable_parameters
from parp.sparsity.threshold import Threshold, global_kth_smallest
from parp.sparsity.validation import validate_sparsity

__all__ = [
    "Mask", "MeasuredSparsity", "Threshold", "apply_mask", "global_kth_smallest", "magnitude_mask",
    "measure_sparsity", "nm_mask", "PRESETS", "prunable_parameters", "random_mask", "validate_sparsity",
]


def magnitude_mask(model: nn.Module, sparsity: float, scope: str = "global", targets="auto",
                   **target_kwargs) -> Mask:
    """One-shot magnitude pruning mask over ``prunable_parameters(model, targets=targets, **target_kwargs)``.

    ``targets="auto"`` is PARP's speech-encoder scope where the model has it, else every ``nn.Linear`` but
    output heads, so any ``nn.Module`` (BERT, Whisper's encoder, your own) works without regexes.
    """
    return Mask.magnitude(prunable_parameters(model, targets=targets, **target_kwargs), sparsity, scope=scope)


def random_mask(model: nn.Module, sparsity: float, seed: int = 0, targets="auto", **target_kwargs) -> Mask:
    return Mask.random(prunable_parameters(model, targets=targets, **target_kwargs), sparsity, seed=seed)


def nm_mask(model: nn.Module, n: int = 2, m: int = 4, targets="auto", **target_kwargs) -> Mask:
    return Mask.n_m(prunable_parameters(model, targets=targets, **target_kwargs), n=n, m=m)


def apply_mask(model: nn.Module, mask: Mask) -> nn.Module:
    """Zero the masked weights of ``model`` in place and return it."""
    mask.apply_(model)
    return model


@dataclass(frozen=True)
class MeasuredSparsity:
    """Zeros actually present in the weights (not what a mask claims)."""

    overall: float
    per_layer: dict
    zeros: int
    total: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def measure_sparsity(model: nn.Module, names: Iterable[str] | None = None, targets="auto") -> MeasuredSparsity:
    """Count exact zeros in the named parameters (default: the prunable ones, ``targets`` as in ``magnitude_mask``)."""
    params = dict(model.named_parameters())
    names = list(prunable_parameters(model, targets=targets)) if names is None else list(names)
    missing = [n for n in names if n not in params]
    if missing:
        raise MaskError(f"the model has no parameter {missing[0]!r}")
    per_layer, zeros, total = {}, 0, 0
    for n in names:
        w = params[n]
        z = w.numel() - int(torch.count_nonzero(w))
        per_layer[n] = z / w.numel() if w.numel() else 0.0
        zeros += z
        total += w.numel()
    return MeasuredSparsity(zeros / total if total else 0.0, per_layer, zeros, total)
