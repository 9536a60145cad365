"""parp: Prune, Adjust and Re-Prune self-supervised speech models for low-resource ASR.

``from parp import Mask, magnitude_mask, prune, finetune, evaluate``: the names below are imported on first
use, so ``import parp`` (and ``parp --help``) stays cheap; torch loads only when a name needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Mask": "parp.sparsity", "magnitude_mask": "parp.sparsity", "random_mask": "parp.sparsity",
    "nm_mask": "parp.sparsity", "apply_mask": "parp.sparsity", "measure_sparsity": "parp.sparsity",
    "prunable_parameters": "parp.sparsity", "PRESETS": "parp.sparsity",
    "finetune": "parp.api", "prune": "parp.api", "evaluate": "parp.api",
    "ParpError": "parp.errors",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parp' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
