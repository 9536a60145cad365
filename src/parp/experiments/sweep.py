"""``parp sweep``: languages x methods x sparsities x seeds, every cell with the SAME fine-tuning schedule.

A sweep is one ``TrainConfig`` (steps, learning rate, warm-up, freezing: identical for every method, so the
comparison is fair; a language may set its own ``max_steps``, its N(d), for all of its cells) plus the grid. Each cell is one ``run_prune`` into
``output_dir/cells/<lang>/<method>/s<sparsity>/seed<seed>/``; a cell whose ``run.json`` says ``completed`` is
never rerun, and a killed cell resumes from the loop's checkpoints. Results are rebuilt from the cells' records
after every cell, so ``results.csv`` / ``results.json`` are always current, even after a crash.

This module schedules the cells; the grid is ``grid.py``, the per-process claims ``claims.py``, a cell's run
arguments and result row ``cells.py``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..methods import run_prune
from ..records import is_completed
from ..results import write_results
from .adopt import adopt_cells, adopted_line
from .cell_masks import write_missing_masks
from .cells import (Cell, CellRunner, LanguageData, cell_arguments, collect_results, done_line, prerequisite,
                    previous_imp_cell)
from .claims import claim_cell, claim_heartbeat
from .grid import SweepConfig, check_finished_cells, validate_sweep
from .transfer import prepare_start_mask
from .launchers import LaunchArguments, run_cells_on_ray, validate_launch
from .multilingual import run_multilingual
from .ranks import from_main, is_main, join_process_group, world_size


class Decision(Enum):
    RUN = "run"  # claimed a cell: run it
    WAIT = "wait"  # other processes hold the remaining cells (or cells they need): poll again
    DONE = "done"  # every cell finished, or was run by this process


@dataclass(frozen=True)
class NextCell:
    """The scheduler's answer: run cell ``number`` (1-based, in grid order; ``dense``: the finished dense cell's
    folder it reuses), wait, or stop."""

    decision: Decision
    number: int = 0
    dense: str | None = None


WAIT = NextCell(Decision.WAIT)
DONE = NextCell(Decision.DONE)


def run_sweep(config: SweepConfig, poll_seconds: float = 10.0, launch: LaunchArguments | None = None,
              cell_runner: CellRunner | None = None) -> list[dict[str, Any]]:
    """Run every missing cell, then write ``results.csv`` / ``results.json``; returns the result rows.

    Cells run in order; a cell claimed by another live ``parp sweep`` process on the same folder is left to it,
    and an OMP/IMP cell waits for its dense reference cell if another process is still running that one.
    Under ``torchrun`` the ranks run each cell together: rank 0 picks it and writes (see ``ranks.py``).
    With ``launch.launcher == "ray"`` every cell is a Ray task instead (see ``launchers.py``). Every launcher
    runs a cell with ``cell_runner`` (default :func:`run_cell`).
    """
    launch = launch or LaunchArguments()
    validate_launch(launch)
    cell_runner = cell_runner or run_cell
    if world_size() > 1 and launch.launcher == "ray":
        raise ConfigError("--launcher ray runs each cell as one Ray task: start it as one process, not under torchrun")
    if world_size() > 1 and config.multilingual:
        raise ConfigError("multilingual: true is not run under torchrun yet: run the sweep without it under "
                          "torchrun, then once more in one process with it (finished cells are reused)")
    languages, cells = validate_sweep(config)
    output_dir = Path(config.output_dir)
    by_name = {lang.name: lang for lang in languages}
    join_process_group()
    if config.reuse_cells_from and not config.collect_only and is_main():
        adopted = adopt_cells(config, by_name, cells, output_dir)
        if adopted:
            print(adopted_line(adopted, config.reuse_cells_from), flush=True)
    from_main(lambda: check_finished_cells(config, by_name, cells, output_dir))
    if config.collect_only:
        return from_main(lambda: _collect_only(output_dir, cells))
    if is_main():
        output_dir.mkdir(parents=True, exist_ok=True)
        write_missing_masks(cell.directory(output_dir) for cell in cells)  # cells an older parp finished
        (output_dir / "sweep.json").write_text(json.dumps(dataclasses.asdict(config), indent=2, default=str))
    total = len(cells)
    started = time.time()
    announced: set[int] = set()
    if launch.launcher == "ray":  # the driver schedules; no claims: each cell is submitted once, by it
        run_cells_on_ray(config, launch, languages, cells, output_dir, cell_runner)
    while launch.launcher == "local":  # this process runs cells itself, sharing the folder through claims
        pick = from_main(lambda: next_cell(config, cells, output_dir, announced))
        if pick.decision is Decision.WAIT:
            time.sleep(poll_seconds)  # other workers hold the remaining cells
            continue
        if pick.decision is Decision.DONE:
            break
        i = pick.number
        cell = cells[i - 1]
        directory = cell.directory(output_dir)
        announced.add(i)
        try:
            if is_main():
                print(f"[{i}/{total}] {cell.label()}: running -> {directory}", flush=True)
            with claim_heartbeat(directory) if is_main() else nullcontext():
                summary = cell_runner(config, by_name[cell.language], cell, output_dir)  # it reuses pick.dense too
        finally:
            if is_main():
                (directory / "claimed.pid").unlink(missing_ok=True)
        if is_main():
            print(done_line(i, total, cell, summary, reused=pick.dense is not None), flush=True)
            write_results(output_dir, collect_results(output_dir, cells))
    if config.multilingual:
        run_multilingual(config, languages, output_dir, poll_seconds)
    return from_main(lambda: _finish(output_dir, cells, started))


def next_cell(config: SweepConfig, cells: list[Cell], output_dir: Path,
              announced: set[int]) -> NextCell:
    """Claim the first cell this process can run now (``Decision.RUN``); ``WAIT`` while other processes hold the
    remaining cells; ``DONE`` when every cell is done (or was run by this process)."""
    waiting = False
    for i, cell in enumerate(cells, start=1):
        directory = cell.directory(output_dir)
        if is_completed(directory):
            if i not in announced:
                print(f"[{i}/{len(cells)}] {cell.label()}: completed earlier, skipped", flush=True)
                announced.add(i)
            continue
        if i in announced:
            continue  # this process ran it already: never twice
        earlier = prerequisite(config, cell)  # IMP chain, transfer source or the dense cell OMP/IMP reuse
        needed = earlier.directory(output_dir) if earlier else None
        if needed is not None and not is_completed(needed):
            running = (needed / "claimed.pid").exists()
            still_to_run = earlier in cells and cells.index(earlier) + 1 not in announced
            if running or cell.mask_from or (earlier.method != "none" and still_to_run):
                # the cell this one continues (an IMP chain's previous round, a transfer's source) runs in another
                # process, or is an earlier cell of the grid still to run (claimed on the next pass); a transfer
                # cell also waits for a source a failed worker left. OMP/IMP wait for a dense cell only while it runs.
                waiting = True
                continue
            if earlier.method != "none":
                raise ConfigError(f"{cell.label()}: continues {earlier.label()}, which did not finish")
        if not claim_cell(directory):
            waiting = True
            continue
        dense = str(needed) if earlier and earlier.method == "none" and is_completed(needed) else None
        return NextCell(Decision.RUN, i, dense)
    if waiting and not all(is_completed(c.directory(output_dir)) for c in cells):
        return WAIT
    return DONE


def run_cell(config: SweepConfig, language: LanguageData, cell: Cell, output_dir: Path) -> dict[str, Any]:
    """Run (or resume, from its checkpoints) one cell; every launcher calls this. Returns run_prune's summary.

    OMP/IMP reuse the dense cell's fine-tuning when that cell has finished (the launchers run it first)."""
    dense_dir = cell.dense().directory(output_dir)
    needs_dense = config.reuse_dense and cell.method in ("omp", "imp") and previous_imp_cell(config, cell) is None
    dense = str(dense_dir) if needs_dense and is_completed(dense_dir) else None
    if cell.mask_from:
        prepare_start_mask(cell, output_dir)
    return run_prune(*cell_arguments(config, language, cell, output_dir, dense))


def _collect_only(output_dir: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    rows = collect_results(output_dir, cells)
    if output_dir.is_dir():
        write_results(output_dir, rows)
    grid = {c.directory(output_dir).relative_to(output_dir).as_posix() for c in cells}
    finished = sum(row.get("cell") in grid for row in rows)  # not the multilingual rows (one per language)
    print(f"sweep: {finished} of {len(cells)} cells finished; results in {output_dir / 'results.csv'} "
          f"(collect only: nothing was run)", flush=True)
    return rows


def _finish(output_dir: Path, cells: list[Cell], started: float) -> list[dict[str, Any]]:
    rows = collect_results(output_dir, cells)
    write_results(output_dir, rows)
    print(f"sweep: {len(rows)} result rows in {output_dir / 'results.csv'} "
          f"({time.time() - started:.0f} s this run)", flush=True)
    return rows
