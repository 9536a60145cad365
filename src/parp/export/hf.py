"""Dense Hugging Face folder with the zeros baked in: loadable with plain transformers, no parp needed."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from torch import nn

from parp.sparsity import measure_sparsity
from parp.sparsity.mask import Mask


def save_pruned_model(model: nn.Module, mask: Mask, out_dir, processor=None) -> Path:
    """Apply ``mask`` to ``model`` (in place), save_pretrained it and write mask.safetensors + sparsity.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mask.apply_(model)
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True  # transformers 4.x; 5.x always writes safetensors
    model.save_pretrained(out_dir, **kwargs)
    if processor is not None:
        processor.save_pretrained(out_dir)
    mask.save(out_dir / "mask.safetensors", metadata={"model_class": type(model).__name__})
    measured = measure_sparsity(model, list(mask.masks))
    report = {
        "mask_sparsity": mask.sparsity(),
        "measured_overall": measured.overall,
        "zeros": measured.zeros,
        "total": measured.total,
        "per_layer": measured.per_layer,
    }
    (out_dir / "sparsity.json").write_text(json.dumps(report, indent=2) + "\n")
    return out_dir
