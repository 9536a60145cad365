"""The Python front of the three pipeline stages: the CLI's options as keyword arguments.

``finetune(train_manifest=..., max_steps=...)`` is ``parp finetune --train-manifest ... --max-steps ...``: the
keywords are the dataclass fields (or their transformers names, as on the command line), checked the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from .config import translate_keys
from .data import DataArguments
from .errors import ConfigError
from .evaluation.evaluate import EvaluateArguments, run_evaluate
from .methods import PruneArguments, run_prune
from .models import ModelArguments
from .training.finetune import run_finetune
from .training.config import TrainConfig


def _build(types: Sequence[type], options: dict[str, Any], what: str) -> list:
    values = translate_keys(options, types)
    names = {f.name for t in types for f in dataclasses.fields(t)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{what}(): unknown option(s) {', '.join(unknown)}")
    return [t(**{f.name: values[f.name] for f in dataclasses.fields(t) if f.name in values}) for t in types]


def finetune(**options) -> dict:
    """Fine-tune with CTC, no pruning; returns final/best metrics, steps, model folder and record path."""
    data, model, train = _build([DataArguments, ModelArguments, TrainConfig], options, "finetune")
    return run_finetune(data, model, train).summary()


def prune(method: str = "parp", sparsity: float = 0.5, **options) -> dict:
    """Prune with ``method`` (parp, omp, imp, mpi, random, none) to ``sparsity``, fine-tune and export."""
    prune_args, data, model, train = _build([PruneArguments, DataArguments, ModelArguments, TrainConfig],
                                            {"method": method, "sparsity": sparsity, **options}, "prune")
    return run_prune(data, model, train, prune_args)


def evaluate(model: str, manifest: str, **options) -> dict:
    """WER/CER of a fine-tuned model folder on a manifest (also writes metrics.json and predictions.tsv)."""
    (args,) = _build([EvaluateArguments], {"model": model, "manifest": manifest, **options}, "evaluate")
    return run_evaluate(args)
