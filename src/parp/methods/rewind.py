"""IMP's rewind: a copy of the weights taken before fine-tuning, and putting it back."""

from __future__ import annotations

import copy

import torch


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights to rewind to (IMP)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def rewind(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(copy.copy(weights))
