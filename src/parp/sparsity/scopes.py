"""A pruning scope (``global``, ``layer``, ``ffn`` or ``N:M``) as one mask recipe, shared by ``parp prune``
(``parp.methods.base.MethodContext``) and the Trainer callback (``parp.integrations.transformers``), so both give
the same parameters and the same exact sparsity."""

from __future__ import annotations

import torch
from torch import nn

from parp.errors import MaskError
from parp.sparsity.mask import Mask
from parp.sparsity.structured import ffn_mask, ffn_parameters, random_ffn_mask
from parp.sparsity.targets import prunable_parameters


def parse_n_m(scope: str) -> tuple[int, int] | None:
    """``"2:4"`` -> (2, 4); any other scope -> None."""
    parts = scope.split(":")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def check_scope_name(scope: str) -> None:
    if scope not in ("global", "layer", "ffn") and not parse_n_m(scope):
        raise MaskError(f"scope must be global, layer, ffn or N:M such as 2:4, got {scope!r}")


def scope_parameters(model: nn.Module, scope: str, **target_kwargs) -> dict[str, nn.Parameter]:
    """What ``scope`` prunes: FFN neurons' parameters for ``ffn``, else ``prunable_parameters(**target_kwargs)``."""
    return ffn_parameters(model) if scope == "ffn" else prunable_parameters(model, **target_kwargs)


@torch.no_grad()
def scope_mask(params, sparsity: float, scope: str) -> Mask:
    """The magnitude mask of ``params`` at ``sparsity`` in ``scope`` (an N:M scope fixes its own sparsity)."""
    n_m = parse_n_m(scope)
    if scope == "ffn":
        return ffn_mask(params, sparsity)
    if n_m:
        return Mask.n_m(params, *n_m)
    return Mask.magnitude(params, sparsity, scope=scope)


def random_scope_mask(params, sparsity: float, scope: str, seed: int = 0) -> Mask:
    """The random baseline: random weights per tensor, or random neurons with ``ffn``."""
    if scope == "ffn":
        return random_ffn_mask(params, sparsity, seed=seed)
    return Mask.random(params, sparsity, seed=seed)
