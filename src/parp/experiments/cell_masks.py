"""A finished cell's final mask file: found when results are collected (a read, nothing else), written when the
sweep runs where a cell lacks one (:func:`write_missing_masks`: cells finished by an older parp, whose export wrote
the weights only; the mask is read off their zeros)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from safetensors import safe_open
from transformers import AutoModelForCTC

from ..records import is_completed
from ..sparsity import Mask, prunable_parameters
from ..sparsity.mask import MASK_FORMAT

DERIVED_MASK = "final-mask.safetensors"  # the mask read off an older cell's zeros, beside its run.json


def final_mask_path(directory: Path) -> Path:
    """The cell's final mask file: the one export wrote or the one derived from its zeros; where there is none
    (records copied back from a GPU call without their weights), where export writes the mask."""
    derived = directory / DERIVED_MASK
    if derived.is_file():
        return derived
    for candidate in sorted(directory.glob("*.safetensors")) + sorted((directory / "model").glob("*.safetensors")):
        if _is_mask_file(candidate):
            return candidate
    return directory / "model" / "mask.safetensors"


def write_missing_masks(directories: Iterable[Path]) -> list[Path]:
    """Derive the mask of every finished cell that has exported weights but no mask file; returns those written."""
    written = []
    for directory in directories:
        if (is_completed(directory) and not final_mask_path(directory).is_file()
                and (directory / "model" / "model.safetensors").is_file()):
            written.append(derive_mask_from_zeros(directory / "model", directory / DERIVED_MASK))
    return written


def _is_mask_file(path: Path) -> bool:
    try:
        with safe_open(str(path), framework="np") as f:
            return (f.metadata() or {}).get("format") == MASK_FORMAT
    except Exception:  # not a safetensors file we can read: not a mask
        return False


def derive_mask_from_zeros(model_dir: Path, path: Path) -> Path:
    """Kept = non-zero prunable weights of a saved model (exact for every method: pruned weights are exactly 0)."""
    model = AutoModelForCTC.from_pretrained(str(model_dir))
    with torch.no_grad():
        mask = Mask({n: p.detach() != 0 for n, p in prunable_parameters(model).items()})
    return mask.save(path, metadata={"derived_from": str(model_dir)})
