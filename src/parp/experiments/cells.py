"""A sweep's cells: the grid's unit, each cell's run arguments (the shared schedule, only folder and seed change),
and the result row read off a finished cell's record.

Shared by the per-language sweep and the one-run multilingual subnetwork; the scheduling is ``sweep.py``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..config import shared_values
from ..errors import ConfigError
from ..data import DataArguments
from ..methods import PruneArguments
from ..models import ModelArguments
from ..records import is_completed, load_run
from ..results import TRANSFER
from ..training.config import TrainConfig
from .cell_masks import final_mask_path

if TYPE_CHECKING:
    from .grid import SweepConfig

MULTILINGUAL = "multi"  # the cell folder of the one-run multilingual subnetwork
# transfer cells (``parp.experiments.transfer``; their method names, TRANSFER and TRANSFER_RANDOM, are defined once,
# in ``parp.results``) start PARP from this method's mask on another language
SOURCE_METHOD = "omp"  # the method whose masks are transferred


#: DataArguments a language of a sweep may set for itself (``languages: {tus: {train: ..., token_unit: ipa-phone}}``):
#: how its text is cut into units and which of its clips are usable; everything else is the grid's, shared.
LANGUAGE_OPTIONS = ("token_unit", "allow_unknown_chars", "text_column", "min_seconds", "max_seconds")
#: The one schedule setting a language may set for itself: its own N(d), the updates its unpruned model needs to
#: converge (``docs/results/converged/convergence.py``), so that a grid of languages that converge at different
#: speeds trains each one, and every cell that starts from it (OMP's second phase, PARP-P' onto it), to convergence.
LANGUAGE_SCHEDULE_OPTIONS = ("max_steps",)


@dataclass(frozen=True)
class LanguageData:
    name: str
    train_manifest: str
    valid_manifest: str | None = None
    options: tuple[tuple[str, Any], ...] = ()  # (LANGUAGE_OPTIONS or _SCHEDULE_ name, value) overriding the grid's

    def data_options(self, config: SweepConfig) -> dict[str, Any]:
        """The grid's data settings with this language's own ones on top."""
        own = {k: v for k, v in self.options if k in LANGUAGE_OPTIONS}
        return {**shared_values(config, DataArguments), **own}

    def schedule_options(self) -> dict[str, Any]:
        """This language's own schedule settings (its ``max_steps``), overriding the grid's."""
        return {k: v for k, v in self.options if k in LANGUAGE_SCHEDULE_OPTIONS}


@dataclass(frozen=True)
class Cell:
    language: str
    method: str
    sparsity: float
    seed: int
    mask_from: str | None = None  # transfer cells: the language whose mask this cell starts from
    train_hours: float | None = None  # the nested data-size subset the cell trains on (None: all the data)

    def directory(self, output_dir: Path) -> Path:
        method = f"{self.method}-from-{self.mask_from}" if self.mask_from else self.method
        size = () if self.train_hours is None else (f"h{self.train_hours:g}",)  # older sweeps' folders unchanged
        return output_dir.joinpath("cells", self.language, *size, method, f"s{self.sparsity:g}", f"seed{self.seed}")

    def label(self) -> str:
        source = f" from {self.mask_from}" if self.mask_from else ""
        size = "" if self.train_hours is None else f" {self.train_hours:g}h"
        return f"{self.language}{size} {self.method}{source} s={self.sparsity:g} seed={self.seed}"

    def dense(self) -> Cell:
        """The unpruned cell of the same language, data size and seed (OMP/IMP's first fine-tuning)."""
        return Cell(self.language, "none", 0.0, self.seed, train_hours=self.train_hours)


def seeds_of(config: SweepConfig) -> list[int]:
    return list(config.seeds) if config.seeds else [config.seed]


def data_sizes(config: SweepConfig) -> list[float | None]:
    """The sweep's data sizes in run order (smallest first, all of the data last); [None] when not given."""
    if not config.train_hours:
        return [None]
    sizes = []
    for value in config.train_hours:
        if value is None or str(value).lower() in ("none", "null", "all"):
            value = None
        else:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"--train_hours: {value!r} is not a number of hours (or none for all)") from None
            if not value > 0:
                raise ConfigError(f"--train_hours: {value!r} must be a positive number of hours")
        if value in sizes:
            raise ConfigError(f"--train_hours: {value} is given twice")
        sizes.append(value)
    return sorted(sizes, key=lambda h: float("inf") if h is None else h)


def train_config_for(config: SweepConfig, directory: Path, seed: int,
                     language: LanguageData | None = None) -> TrainConfig:
    """The shared schedule, with only the cell's folder and seed changed (and the language's own max_steps)."""
    schedule = {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)}
    own = language.schedule_options() if language else {}
    return TrainConfig(**{**schedule, **own, "output_dir": str(directory), "seed": seed})


def cell_arguments(config: SweepConfig, language: LanguageData, cell: Cell, output_dir: Path,
                   dense_checkpoint: str | None = None) -> tuple:
    """The ``run_prune`` arguments of one cell: the shared schedule, with only the cell's folder and seed changed."""
    if cell.mask_from:  # PARP-P': PARP from a mask file instead of the pretrained weights' magnitude mask
        prune = prune_arguments(config, "parp", cell.sparsity, initial_mask=str(start_mask_path(cell, output_dir)))
    else:
        prune = prune_arguments(config, cell.method, cell.sparsity, dense_checkpoint=dense_checkpoint)
    earlier = previous_imp_cell(config, cell)
    if config.imp_chain and cell.method == "imp":  # one more round per cell, from the previous cell if any
        prune = dataclasses.replace(prune, imp_rounds=1, dense_checkpoint=None if earlier else dense_checkpoint,
                                    imp_checkpoint=str(earlier.directory(output_dir)) if earlier else None)
    return (data_arguments(config, language, cell.train_hours),
            ModelArguments(**shared_values(config, ModelArguments)),
            train_config_for(config, cell.directory(output_dir), cell.seed, language), prune)


def previous_imp_cell(config: SweepConfig, cell: Cell) -> Cell | None:
    """With ``imp_chain``: the IMP cell this one continues (the next lower sparsity), None for the lowest."""
    if not (config.imp_chain and cell.method == "imp"):
        return None
    lower = [float(s) for s in config.sparsities if 0 < s < cell.sparsity]
    return dataclasses.replace(cell, sparsity=max(lower)) if lower else None


def data_arguments(config: SweepConfig, language: LanguageData, train_hours: float | None = None) -> DataArguments:
    """A cell's data: the language's manifests and own options, the grid's shared settings, the data size."""
    return DataArguments(train_manifest=language.train_manifest, valid_manifest=language.valid_manifest,
                         train_hours=train_hours, **language.data_options(config))


def prune_arguments(config: SweepConfig, method: str, sparsity: float, dense_checkpoint: str | None = None,
                    initial_mask: str | None = None):
    """A cell's pruning arguments; a method's own options stay at their defaults in other methods' cells, so
    changing, say, ``imp_rounds`` does not make the finished PARP cells look as if they ran differently."""
    own = {"parp": {"prune_every": config.prune_every}, "imp": {"imp_rounds": config.imp_rounds}}.get(method, {})
    return PruneArguments(method=method, sparsity=sparsity, scope=config.scope, dense_checkpoint=dense_checkpoint,
                          initial_mask=initial_mask, **own)


def source_cell(cell: Cell) -> Cell:
    """The cell whose final mask a transfer cell starts from (or draws its random twin from)."""
    return Cell(cell.mask_from, SOURCE_METHOD, cell.sparsity, cell.seed, train_hours=cell.train_hours)


def start_mask_path(cell: Cell, output_dir: Path) -> Path:
    """The mask file a transfer cell starts PARP from: the source cell's exported mask, or, for the random
    control, the random twin kept in the cell's own ``start/`` folder (``parp.experiments.transfer`` writes it)."""
    if cell.method == TRANSFER:
        return source_cell(cell).directory(output_dir) / "model" / "mask.safetensors"
    return cell.directory(output_dir) / "start" / "mask.safetensors"


# how a launcher runs one cell (default: parp.experiments.sweep.run_cell); returns run_prune's summary
CellRunner = Callable[["SweepConfig", LanguageData, Cell, Path], dict[str, Any]]


def prerequisite(config: SweepConfig, cell: Cell) -> Cell | None:
    """The cell this one continues: the previous cell of an IMP chain, the source language's OMP cell of a
    transfer cell, else the dense cell OMP/IMP reuse."""
    if cell.mask_from:
        return source_cell(cell)
    earlier = previous_imp_cell(config, cell)
    if earlier is not None:
        return earlier
    if config.reuse_dense and cell.method in ("omp", "imp"):
        return cell.dense()
    return None


def pending_cells(cells: list[Cell], output_dir: Path) -> list[tuple[int, Cell]]:
    """(1-based position, cell) of every cell of the grid not completed yet, in run order."""
    return [(i, c) for i, c in enumerate(cells, start=1) if not is_completed(c.directory(output_dir))]


def done_line(i: int, total: int, cell: Cell, summary: dict[str, Any], reused: bool) -> str:
    final = summary.get("final", {})
    return (f"[{i}/{total}] {cell.label()}: done in {summary['wall_seconds']:.0f} s, "
            + " ".join(f"{k.upper()} {final[k]:.3f}" for k in ("wer", "cer", "per") if k in final)
            + (" (dense phase reused)" if reused else ""))


def collect_results(output_dir: Path, cells: list[Cell] | None = None) -> list[dict[str, Any]]:
    """One row per completed cell, read from the cells' run records (cells not finished are left out)."""
    output_dir = Path(output_dir)
    if cells is None:
        cells = discover_cells(output_dir)
    rows = [cell_result(cell, output_dir) for cell in cells if is_completed(cell.directory(output_dir))]
    multi = output_dir / "multilingual-results.json"
    if multi.is_file():
        rows += json.loads(multi.read_text(encoding="utf-8"))
    return rows


def discover_cells(output_dir: Path) -> list[Cell]:
    """The cells a sweep folder holds records of: ``LANG[/hHOURS]/METHOD/sS/seedN`` (``Cell.directory``)."""
    root = Path(output_dir) / "cells"
    cells = []
    for record in sorted(root.glob("*/*/s*/seed*/run.json")) + sorted(root.glob("*/h*/*/s*/seed*/run.json")):
        language, *size, method, sparsity, seed = record.parent.relative_to(root).parts
        if language == MULTILINGUAL:
            continue
        method, _, source = method.partition("-from-")
        cells.append(Cell(language, method, float(sparsity[1:]), int(seed[4:]), source or None,
                          float(size[0][1:]) if size else None))
    return cells


def cell_result(cell: Cell, output_dir: Path) -> dict[str, Any]:
    """The tidy row of one finished cell; cost includes any reused dense phase. Paths are relative to the sweep."""
    directory = cell.directory(output_dir)
    run = load_run(directory)
    metrics = run.metrics
    final = metrics.get("final", {})
    last = ([p for p in run.phases if p.is_training] or [None])[-1]  # the fine-tuning whose model is scored
    if not run.section("train").get("early_stopping_patience"):
        last = None  # without early stopping the last model is scored, whichever validation was best
    return {
        "method": cell.method,
        "language": cell.language,
        "train_hours": cell.train_hours,
        "mask_from": cell.mask_from,
        "sparsity_target": cell.sparsity,
        "sparsity_achieved": metrics.get("sparsity_achieved"),
        "seed": cell.seed,
        "wer": final.get("wer"),
        "cer": final.get("cer"),
        "per": final.get("per"),
        "finetune_steps": metrics.get("finetune_steps"),
        "best_step": last.facts.get("best_step") if last else None,  # with early stopping: the update that won
        "stopped_early": last.facts.get("stopped_early") if last else None,
        "finetunings": metrics.get("finetunings"),
        "wall_seconds": run.cost_seconds,
        "phase_wall_seconds": run.phase_costs,
        "dense_bytes": _size(directory / "model" / "model.safetensors"),
        "compressed_bytes": _size(directory / "model.sparse.safetensors"),
        "reused_dense": any(p.reused for p in run.phases if p.name != "export"),
        "iou_with_language_mask": None,
        "iou_with_pretrained_mask": metrics.get("iou_with_pretrained_mask"),  # None in records of older parp
        "mask": final_mask_path(directory).relative_to(output_dir).as_posix(),
        "cell": directory.relative_to(output_dir).as_posix(),
    }


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None
