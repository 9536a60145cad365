"""Cells another sweep already finished with this sweep's exact recipe (``reuse_cells_from``): linked in, not rerun.

Why: grids overlap. The cross-lingual grid at 1 h holds the 1-hour cells of the Mboshi, Yoruba and Kinyarwanda
grids of the convergence experiment (same subset, schedule, seed, encoder); running them twice costs CPU-hours.
A cell is adopted only where this sweep has not started it (no ``run.json``) and the other sweep's finished cell
ran with the settings this sweep would give it (the check ``check_finished_cells`` makes of its own cells): so a
transfer cell (its start mask is a file of its own sweep) or a chained IMP round is never adopted, only run.
Files are hard-linked (copied across file systems); ``run.json`` gains ``adopted_from``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..methods.compatibility import differing_settings
from ..models import encoder_identity
from ..records import jsonable, read_run, record_path, write_record
from .cells import Cell, LanguageData, cell_arguments

SECTIONS = ("data", "model", "train", "prune")
SKIPPED = ("checkpoints", "best", "logs", ".parp.lock", "claimed.pid")  # resume state and locks: not results


def adopt_cells(config, languages: dict[str, LanguageData], cells: list[Cell], output_dir: Path) -> list[Cell]:
    """Link into ``output_dir`` every cell of ``cells`` that a ``config.reuse_cells_from`` folder finished with
    this grid's recipe and that this sweep has not begun; returns the cells adopted."""
    adopted = []
    encoder = encoder_identity(config.model)
    for cell in cells:
        target = cell.directory(output_dir)
        if record_path(target).exists():
            continue  # finished here, or begun here (it resumes from its own checkpoints)
        for folder in config.reuse_cells_from or []:
            source = cell.directory(Path(folder))
            run = read_run(source)
            if run is None or not run.completed or run.encoder not in (None, encoder):
                continue
            expected = jsonable(dict(zip(SECTIONS, cell_arguments(config, languages[cell.language], cell, output_dir))))
            if differing_settings(run.arguments, expected, SECTIONS):
                continue
            _link_tree(source, target)
            write_record(target, "run.json", {**run.data, "adopted_from": str(source)})  # last: then it is complete
            adopted.append(cell)
            break
    return adopted


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link (or copy) ``source``'s files into ``target``, leaving out its run.json, resume state and locks."""
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        into = target / Path(root).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name in SKIPPED or (root == str(source) and name == "run.json") or (into / name).exists():
                continue
            try:
                os.link(Path(root) / name, into / name)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(Path(root) / name, into / name)


def adopted_line(cells: list[Cell], folders: list[str]) -> str:
    return (f"sweep: {len(cells)} cell(s) adopted, finished with this recipe in {', '.join(folders)}: "
            + ", ".join(c.label() for c in cells))
