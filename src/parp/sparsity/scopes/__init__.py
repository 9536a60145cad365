"""Pruning scopes as sparsifiers: the registry and the one factory that turns ``--scope`` into a
:class:`Sparsifier` (shared by ``parp prune``, the sweeps and the Trainer callback, so all give the same parameters
and the same exact sparsity).

Adding a scope: a module with a :class:`Sparsifier` subclass, and its name in :data:`SCOPES` (or, for a scope
that carries numbers like ``2:4``, its parser in :data:`PATTERNS`).
"""

from __future__ import annotations

from typing import Callable

from parp.errors import MaskError
from parp.sparsity.scopes.base import Sparsifier, StructuredSparsifier
from parp.sparsity.scopes.ffn import FFNNeurons
from parp.sparsity.scopes.heads import AttentionHeads
from parp.sparsity.scopes.magnitude import GlobalMagnitude, LayerMagnitude
from parp.sparsity.scopes.n_m import NMSparsifier

SCOPES: dict[str, Callable[[], Sparsifier]] = {
    "global": GlobalMagnitude,
    "layer": LayerMagnitude,
    "ffn": FFNNeurons,
    "heads": AttentionHeads,
}
# scopes named by numbers: a parser returns the sparsifier, or None when the name is not its form
PATTERNS: tuple[Callable[[str], Sparsifier | None], ...] = (NMSparsifier.parse,)
PATTERN_NAMES = "N:M such as 2:4"


def sparsifier(scope: str, flag: str = "scope") -> Sparsifier:
    """The sparsifier of ``scope``; an unknown name or a bad N:M pair is one :class:`MaskError` naming ``flag``."""
    if scope in SCOPES:
        return SCOPES[scope]()
    try:
        for parse in PATTERNS:
            found = parse(scope)
            if found is not None:
                return found
    except MaskError as exc:
        raise MaskError(f"{flag} {scope}: {exc}") from None
    raise MaskError(f"{flag} must be {', '.join(SCOPES)} or {PATTERN_NAMES}, got {scope!r}")


def weight_scope_names() -> list[str]:
    """The scopes whose masks are chosen weight by weight (comparable by IoU, transferable between languages)."""
    return [name for name, make in SCOPES.items() if make().weight_masks]


__all__ = ["PATTERNS", "SCOPES", "Sparsifier", "StructuredSparsifier", "sparsifier", "weight_scope_names"]
