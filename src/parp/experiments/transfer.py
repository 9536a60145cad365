"""The cross-lingual transfer matrix of ``parp sweep`` (``transfer: true``): does a mask found on one language serve
another?

For every ordered pair (A, B) of the sweep's languages (A among ``transfer_sources`` if given), at every pruned
sparsity and seed, two cells on B:

* ``transfer``: PARP-P', i.e. PARP on B starting from A's final OMP mask instead of the pretrained weights'
  magnitude mask (``parp prune --method parp --initial-mask``);
* ``transfer-random``: the control, PARP on B starting from A's *random twin*, a random mask that prunes exactly
  as many weights in every tensor as A's mask (``Mask.random_like``). It keeps the per-tensor (hence per-layer)
  sparsity profile and the procedure, and loses only which weights A's mask chose; the existing ``random`` method
  would not do, as it prunes every tensor at the uniform target and keeps its mask fixed.

Both are compared with PARP on B with B's own start (the ``parp`` cell of the grid). A transfer cell waits for
A's OMP cell as OMP waits for the dense cell (``parp.experiments.cells.prerequisite``), lives in
``cells/B/<method>-from-A/s<sparsity>/seed<seed>/`` and resumes like every cell; its result row names A in
``mask_from``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..results import TRANSFER, TRANSFER_RANDOM
from ..sparsity import Mask
from ..sparsity.scopes import sparsifier, weight_scope_names
from .cells import SOURCE_METHOD, Cell, LanguageData, seeds_of, source_cell, start_mask_path

if TYPE_CHECKING:
    from .grid import SweepConfig

TRANSFER_METHODS = (TRANSFER, TRANSFER_RANDOM)


def transfer_cells(config: SweepConfig, languages: list[LanguageData], train_hours: float | None = None) -> list[Cell]:
    """The transfer cells of the grid at one data size (none unless ``transfer: true``), checked against the grid
    they need; a mask moves between languages trained on the same amount of data."""
    if not config.transfer:
        if config.transfer_sources:
            raise ConfigError("transfer_sources needs transfer: true")
        return []
    names = [language.name for language in languages]
    methods = set(config.methods)
    if len(names) < 2:
        raise ConfigError("transfer: true needs at least two languages")
    if SOURCE_METHOD not in methods or "parp" not in methods:
        raise ConfigError("transfer: true needs methods omp (the masks transferred) and parp (each language with its "
                          f"own start, the reference), got methods {sorted(methods)}")
    if not sparsifier(config.scope).weight_masks:
        raise ConfigError(f"transfer: true needs scope {' or '.join(weight_scope_names())} (weight masks), got scope "
                          f"{config.scope!r}")
    sources = list(config.transfer_sources or names)
    unknown = sorted(set(sources) - set(names))
    if unknown:
        raise ConfigError(f"transfer_sources: {', '.join(unknown)} not among the sweep's languages {names}")
    pruned = sorted({float(s) for s in config.sparsities if s > 0})
    return [Cell(target, method, s, seed, mask_from=source, train_hours=train_hours)
            for s in pruned for seed in seeds_of(config) for source in names if source in sources
            for target in names if target != source for method in TRANSFER_METHODS]


def prepare_start_mask(cell: Cell, output_dir: Path) -> Path:
    """The start mask of a transfer cell, written first where it is the random twin of the source's mask.

    The twin is seeded by the cell's seed, so every rank, and a resumed cell, draw the same mask; it is written
    under a per-process name and moved into place, so a reader never sees half a file."""
    path = start_mask_path(cell, output_dir)
    if cell.method != TRANSFER_RANDOM or path.is_file():
        return path
    source = source_cell(cell).directory(output_dir) / "model" / "mask.safetensors"
    twin = Mask.random_like(Mask.load(source), seed=cell.seed)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    twin.save(partial, metadata={"random_twin_of": str(source), "seed": cell.seed})
    partial.replace(path)
    return path
