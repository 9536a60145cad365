"""Pruning methods of the PARP paper, each a short module hooking into the one training loop.

``run_prune`` is ``parp prune``: prepare data and model once, run the chosen method, re-prune to exactly the
target, export (dense HF folder with zeros baked in, mask, compressed checkpoint) and record the cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data import DataArguments
from ..export import compression_report, save_compact_model, save_compressed, save_pruned_model, write_model_card
from ..models import ModelArguments
from ..sparsity import measure_sparsity
from ..records import Run, RunRecord
from ..training.config import TrainConfig
from ..training.finetune import FinetuneSetup, run_job
from . import full, imp, mpi, omp, parp
from .arguments import METHOD_NAMES, PruneArguments, validate_prune_arguments
from .context import MethodContext
from .hooks import FixedMaskHook, PARPHook

METHODS = {
    "parp": parp.run,
    "omp": omp.run,
    "imp": imp.run,
    "mpi": mpi.run,
    "random": mpi.run_random,
    "none": full.run,
}


def run_prune(data_args: DataArguments, model_args: ModelArguments, config: TrainConfig,
              args: PruneArguments, extra_hooks=()) -> dict:
    """Run one pruning method end to end; returns the run record's essentials."""
    validate_prune_arguments(args)
    arguments = {"prune": args, "data": data_args, "model": model_args, "train": config}
    return run_job("prune", arguments, _completed_summary,
                   lambda record, rank, setup: _prune(record, rank, setup, config, args, extra_hooks))


def _completed_summary(run: Run) -> dict:
    """What ``run_prune`` returns for a run that had already completed, read from its record."""
    prune = run.section("prune")
    return {**run.metrics, "wall_seconds": run.wall_seconds,
            "reused_dense": bool(prune.get("dense_checkpoint") or prune.get("imp_checkpoint")),
            "cost_wall_seconds": run.cost_seconds, "record": str(run.path), "already_completed": True}


def _prune(record: RunRecord, rank: int, setup: FinetuneSetup, config: TrainConfig, args: PruneArguments,
           extra_hooks):
    output_dir = Path(config.output_dir)
    ctx = MethodContext(setup, config, args, record, extra_hooks)
    ctx.check_scope()
    torch.manual_seed(config.seed)
    model, mask = METHODS[args.method](ctx)

    compact = ctx.sparsifier.exports_compact
    with record.phase("export") as phase:
        mask.apply_(model)  # already exact after the last phase; applying again is free and makes it explicit
        measured = measure_sparsity(model, list(mask))
        model_dir = output_dir / "model"
        sizes = {}
        if rank == 0:  # every rank holds the same weights and mask; two writers would race on the same files
            save_pruned_model(model, mask, model_dir)
            setup.objective.save_processor(model_dir)
        if rank == 0 and compact:  # the fast form (--scope ffn): pruned neurons removed, a plain smaller HF model
            compact_dir = save_compact_model(model, mask, output_dir / "model-compact")
            setup.objective.save_processor(compact_dir)
            phase.update(compact_model=str(compact_dir), intermediate_size=_config_value(compact_dir))
        if rank == 0 and args.compressed_checkpoint:
            compressed = save_compressed(model, mask, output_dir / "model.sparse.safetensors")
            sizes = compression_report(model_dir / "model.safetensors", compressed)
        phase.update(sizes=sizes)
    last = ctx.phase_results[-1]
    summary = {
        "method": args.method + ("-p'" if args.initial_mask else ""),
        "sparsity_target": args.sparsity,
        "sparsity_achieved": measured.overall,
        "mask_sparsity": mask.sparsity(),
        "final": last.final_metrics,
        "finetune_steps": sum(r.steps for r in ctx.phase_results),
        "finetunings": len(ctx.phase_results),
        "model": str(model_dir),
        **({"compact_model": str(output_dir / "model-compact")} if compact else {}),
        "sizes": sizes,
    }
    record.update("metrics", summary)
    record.update("metrics", {"iou_with_pretrained_mask": ctx.iou_with_pretrained(mask)})
    record.set("per_layer_sparsity", measured.per_layer)

    def write_cards(summary: dict) -> dict:
        if rank == 0:
            for folder in (model_dir, output_dir / "model-compact") if compact else (model_dir,):
                write_model_card(folder, record.data, last.final_metrics,
                                 {"target": args.sparsity, "achieved": measured.overall}, record.argument_types)
        summary["wall_seconds"] = record.data["wall_seconds"]
        # reused phases (--dense-checkpoint, --imp-checkpoint) and the part of a resumed phase done before its
        # checkpoint ran in other processes; their time is still this method's cost
        summary["reused_dense"] = bool(args.dense_checkpoint or args.imp_checkpoint)
        summary["cost_wall_seconds"] = round(record.data["wall_seconds"] + ctx.elsewhere_wall_seconds, 3)
        summary["record"] = str(record.path)
        return summary

    return summary, write_cards


def _config_value(model_dir: Path, key: str = "intermediate_size"):
    return json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get(key)


__all__ = ["METHODS", "METHOD_NAMES", "FixedMaskHook", "MethodContext", "PARPHook", "PruneArguments", "run_prune"]
