"""What a pruning scope is: a :class:`Sparsifier` that owns its targets, its mask recipe, its random twin and the
part of its mask PARP zeroes while weights may grow back (after torchao's ``BaseSparsifier.update_mask``).

One object per run, built from ``--scope`` by :func:`parp.sparsity.scopes.sparsifier`; ``parp prune``, the sweeps
and the Trainer callback ask it instead of branching on the scope's name.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.targets import prunable_parameters


class Sparsifier:
    """A weight scope: the prunable linears of ``prunable_parameters``, masked weight by weight."""

    name: str = ""
    # masks chosen weight by weight: comparable by IoU with the pretrained weights' mask, transferable as a start mask
    weight_masks: bool = True
    # the scope fixes its own sparsity (N:M): the --sparsity value is not checked
    sets_own_sparsity: bool = False
    # check_targets can fail on some models (run once on a fresh model before training)
    checks_targets: bool = False
    # the pruned model is also exported with the pruned parts removed (model-compact/)
    exports_compact: bool = False

    def targets(self, model: nn.Module, **target_kwargs) -> dict[str, nn.Parameter]:
        """The parameters this scope prunes in ``model`` (``target_kwargs``: ``prunable_parameters``' options)."""
        return prunable_parameters(model, **target_kwargs)

    def update_mask(self, params: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
        """The magnitude mask of ``params`` at ``sparsity`` (exactly, by this scope's rule)."""
        raise NotImplementedError

    def random_mask(self, params: Mapping[str, torch.Tensor], sparsity: float, seed: int = 0) -> Mask:
        """The random baseline: exactly ``round(sparsity * n)`` random weights of every tensor (seeded)."""
        return Mask.random(params, sparsity, seed=seed)

    def adjusting_part(self, mask: Mask) -> Mask:
        """What PARP zeroes between re-prunes while pruned weights may grow back: all of the mask here."""
        return mask

    def check_options(self, enabled_flags: list[str]) -> None:
        """Refuse target options (``--include-bias``, ``--prune-*``) that mean nothing for this scope."""

    def check_targets(self, params: Mapping[str, torch.Tensor]) -> None:
        """Fail before training when this model's targets cannot take the scope (e.g. N:M on odd widths)."""


class StructuredSparsifier(Sparsifier):
    """A scope of whole units (neurons, heads): its own targets, none of the weight scopes' options."""

    weight_masks = False
    unit = ""  # what it prunes, for errors: "whole feed-forward neurons (their fc1 bias included)"

    def check_options(self, enabled_flags: list[str]) -> None:
        if enabled_flags:
            raise MaskError(f"--scope {self.name} prunes {self.unit}; {enabled_flags[0]} applies to the weight "
                            f"scopes only")
