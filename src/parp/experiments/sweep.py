"""``parp sweep``: languages x methods x sparsities x seeds, every cell with the SAME fine-tuning schedule.

A sweep is one ``TrainConfig`` (steps, learning rate, warm-up, freezing: identical for every method, so the
comparison is fair) plus the grid. Each cell is one ``run_prune`` into
``output_dir/cells/<lang>/<method>/s<sparsity>/seed<seed>/``; a cell whose ``run.json`` says ``completed`` is
never rerun, and a killed cell resumes from the loop's checkpoints. Results are rebuilt from the cells' records
after every cell, so ``results.csv`` / ``results.json`` are always current, even after a crash.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import CONFIG_TYPE_KEY, load_config_file, shared
from ..data import DataArguments
from ..errors import ConfigError
from ..methods import PruneArguments
from ..models import ModelArguments
from ..records import is_completed, read_run
from ..results import write_results
from ..training.loop import TrainConfig
from .cells import (MULTILINGUAL, Cell, CellRunner, LanguageData, cell_arguments, collect_results, done_line,
                    previous_imp_cell, seeds_of)

if TYPE_CHECKING:
    from .launchers import LaunchArguments


@dataclass
class SweepConfig(TrainConfig):
    """The grid of a sweep plus the one fine-tuning schedule every cell shares (all TrainConfig fields).

    ``freeze_transformer_steps`` stays 0 for every method: the official code froze the transformer for 10k
    updates in the baselines but not in PARP; a fair comparison gives all methods the same schedule.
    """

    output_dir: str = shared(TrainConfig, "output_dir", default="runs/sweep",
                             help="Sweep folder: cells/, results.csv, report.")
    languages: list[str] = field(default_factory=list, metadata={
        "help": "NAME=TRAIN.tsv[,VALID.tsv] per language (in YAML also a mapping name -> path or {train, valid}).",
        CONFIG_TYPE_KEY: dict})
    methods: list[str] = field(default_factory=lambda: ["omp", "parp"], metadata={
        "help": "Pruning methods (parp omp imp mpi random); the unpruned 'none' cell always runs as reference."})
    sparsities: list[float] = field(default_factory=lambda: [0.5, 0.7], metadata={
        "help": "Target sparsities; 0 means the unpruned 'none' method (run once per language and seed)."})
    seeds: list[int] | None = field(default=None, metadata={
        "help": "Seeds (initialisation, data order, masking) to repeat every cell with (default: [seed])."})
    # the cells' data, model and pruning options: fields of DataArguments / ModelArguments / PruneArguments, whose
    # defaults they keep (cells.cell_arguments hands them back)
    model: str | None = shared(ModelArguments, "model")
    mask_time_prob: float = shared(ModelArguments, "mask_time_prob")
    max_train_utterances: int | None = shared(DataArguments, "max_train_utterances",
                                              help="Seeded training subset per language.")
    max_valid_utterances: int | None = shared(DataArguments, "max_valid_utterances",
                                              help="Seeded validation subset per language.")
    valid_fraction: float = shared(DataArguments, "valid_fraction")
    text_column: str | None = shared(DataArguments, "text_column", help=(
        "Transcript column of every manifest (default 'text'; 'phones' for parp synth --transcripts phones)."))
    token_unit: str | None = shared(DataArguments, "token_unit", help=(
        "CTC output units in every cell: char (default) | phone (space-separated phones, scored as PER)."))
    allow_unknown_chars: bool = shared(DataArguments, "allow_unknown_chars", help=(
        "Validation characters/phones missing from a cell's training vocabulary count as errors ([UNK]) "
        "instead of stopping the cell (rare phones of a tonal language can occur only in validation)."))
    split_seed: int = shared(DataArguments, "split_seed", help="Seed of the held-out split (the same in every cell).")
    prune_every: int = shared(PruneArguments, "prune_every")
    imp_rounds: int = shared(PruneArguments, "imp_rounds", help="IMP: prune/rewind/fine-tune rounds (per cell).")
    imp_chain: bool = field(default=False, metadata={
        "help": "IMP cells form one trajectory, as in the lottery-ticket papers: the cell at each sparsity "
                "continues the IMP cell at the next lower sparsity of the sweep with one more prune/rewind/"
                "fine-tune round (the lowest starts from the dense cell); each cell's cost counts every round "
                "before it. Off: every IMP cell runs imp_rounds rounds of its own."})
    scope: str = shared(PruneArguments, "scope")
    reuse_dense: bool = field(default=True, metadata={
        "help": "OMP/IMP load the finished 'none' cell instead of repeating their identical first fine-tuning "
                "(its steps and wall time still count in their cost)."})
    multilingual: bool = field(default=False, metadata={
        "help": "Also run PARP once on the union of all languages (method 'parp-multi') and score it per language."})
    collect_only: bool = field(default=False, metadata={
        "help": "Run nothing: rebuild results.csv/json from the cells of this grid that have finished (to report "
                "on a sweep that is still running or was cut short)."})


def load_sweep_config(path: str | Path, **overrides: Any) -> SweepConfig:
    """A SweepConfig from the same flat YAML/JSON file ``parp sweep --config`` reads (for library use)."""
    data = {k.replace("-", "_"): v for k, v in {**load_config_file(path), **overrides}.items()}
    known = {f.name for f in dataclasses.fields(SweepConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown sweep option(s) {', '.join(unknown)}")
    return SweepConfig(**data)


def parse_languages(languages: Any) -> list[LanguageData]:
    """``["fi=train.tsv,valid.tsv"]`` or ``{"fi": "train.tsv"}`` / ``{"fi": {"train": ..., "valid": ...}}``."""
    entries: list[tuple[str, Any]] = []
    if isinstance(languages, dict):
        entries = list(languages.items())
    else:
        for item in languages or []:
            name, sep, paths = str(item).partition("=")
            if not sep or not name or not paths:
                raise ConfigError(f"--languages expects NAME=TRAIN.tsv[,VALID.tsv], got {item!r}")
            entries.append((name, paths))
    result = []
    for name, value in entries:
        if isinstance(value, dict):
            train, valid = value.get("train"), value.get("valid")
        else:
            train, _, valid = str(value).partition(",")
        if not train:
            raise ConfigError(f"language {name!r}: no training manifest given")
        if "/" in str(name) or str(name) in (MULTILINGUAL, ""):
            raise ConfigError(f"language name {name!r} cannot be a folder name (or {MULTILINGUAL!r})")
        result.append(LanguageData(str(name), str(train), str(valid) if valid else None))
    if not result:
        raise ConfigError("the sweep names no languages: give --languages NAME=TRAIN.tsv (or a 'languages:' mapping)")
    if len({r.name for r in result}) != len(result):
        raise ConfigError(f"duplicate language names in {[r.name for r in result]}")
    return result


def validate_sweep(config: SweepConfig) -> tuple[list[LanguageData], list[Cell]]:
    """Check the grid before any minute is spent; return the languages and the cells in run order."""
    from ..methods.base import METHOD_NAMES
    from ..sparsity import validate_sparsity

    languages = parse_languages(config.languages)
    for method in config.methods:
        if method not in METHOD_NAMES:
            raise ConfigError(f"--methods: unknown method {method!r} (choose from {', '.join(METHOD_NAMES)})")
    for s in config.sparsities:
        validate_sparsity(s, "--sparsities")
    if config.multilingual and len(languages) < 2:
        raise ConfigError("multilingual: true needs at least two languages")
    pruned = sorted({float(s) for s in config.sparsities if s > 0})
    methods = [m for m in dict.fromkeys(config.methods) if m != "none"]
    cells = []
    for language in languages:
        for seed in seeds_of(config):
            cells.append(Cell(language.name, "none", 0.0, seed))  # first: the reference, and OMP/IMP's dense phase
            cells += [Cell(language.name, m, s, seed) for m in methods for s in pruned]
    return languages, cells


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (Linux: clock ticks since boot, from /proc), so a reused PID is told apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _claim_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid())})


def _claim_is_live(text: str) -> bool | None:
    """True/False for a readable claim, None while it is still being written. A claim from this host whose PID
    is alive but started at another time belongs to a dead worker whose PID was reused."""
    text = text.strip()
    if not text:
        return None
    try:
        claim = json.loads(text)
    except ValueError:
        return None
    if isinstance(claim, int):  # a claim of an older parp: the PID alone
        return claim != os.getpid() and _process_alive(claim)
    if not isinstance(claim, dict) or not isinstance(claim.get("pid"), int):
        return None
    if claim.get("host") != socket.gethostname():
        return True  # another machine's worker on a shared folder: its PID means nothing here
    pid = claim["pid"]
    if pid == os.getpid() or not _process_alive(pid):
        return False
    start = _process_start(pid)
    return start is None or claim.get("start") is None or start == claim["start"]


def claim_cell(directory: Path) -> bool:
    """Atomically claim a cell for this process (``claimed.pid``); a claim left by a dead process is taken over.

    The claim holds PID, host and process start time, so a PID reused by an unrelated process does not keep a
    dead worker's claim alive (and the sweep waiting forever).

    This lets several ``parp sweep`` processes on one machine share a sweep folder: on a small CPU, two
    one-thread workers finish a sweep of small models about twice as fast as one two-thread process.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / "claimed.pid"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                live = _claim_is_live(lock.read_text())
                age = time.time() - lock.stat().st_mtime
            except OSError:
                live, age = None, 0.0
            if live:
                return False
            if live is None and age < 60:
                return False  # another process created the claim and has not written it yet
            lock.unlink(missing_ok=True)  # stale claim of a killed run: take it over (the loop resumes it)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(_claim_text())
        return True
    return False


def run_sweep(config: SweepConfig, poll_seconds: float = 10.0, launch: LaunchArguments | None = None,
              cell_runner: CellRunner | None = None) -> list[dict[str, Any]]:
    """Run every missing cell, then write ``results.csv`` / ``results.json``; returns the result rows.

    Cells run in order; a cell claimed by another live ``parp sweep`` process on the same folder is left to it,
    and an OMP/IMP cell waits for its dense reference cell if another process is still running that one.
    Under ``torchrun`` the ranks run each cell together: rank 0 picks it and writes (see ``ranks.py``).
    With ``launch.launcher == "ray"`` every cell is a Ray task instead (see ``launchers.py``). Every launcher
    runs a cell with ``cell_runner`` (default :func:`run_cell`).
    """
    from .launchers import LaunchArguments, run_cells_on_ray, validate_launch
    from .ranks import from_main, is_main, join_process_group, world_size

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
    from_main(lambda: check_finished_cells(config, by_name, cells, output_dir))
    if config.collect_only:
        return from_main(lambda: _collect_only(output_dir, cells))
    if is_main():
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "sweep.json").write_text(json.dumps(dataclasses.asdict(config), indent=2, default=str))
    total = len(cells)
    started = time.time()
    announced: set[int] = set()
    if launch.launcher == "ray":  # the driver schedules; no claims: each cell is submitted once, by it
        run_cells_on_ray(config, launch, languages, cells, output_dir, cell_runner)
    while launch.launcher == "local":  # this process runs cells itself, sharing the folder through claims
        pick = from_main(lambda: next_cell(config, cells, output_dir, announced))
        if pick == "wait":
            time.sleep(poll_seconds)  # other workers hold the remaining cells
            continue
        if pick is None:
            break
        i, dense = pick
        cell = cells[i - 1]
        directory = cell.directory(output_dir)
        announced.add(i)
        try:
            if is_main():
                print(f"[{i}/{total}] {cell.label()}: running -> {directory}", flush=True)
            summary = cell_runner(config, by_name[cell.language], cell, output_dir)  # it reuses `dense` too
        finally:
            if is_main():
                (directory / "claimed.pid").unlink(missing_ok=True)
        if is_main():
            print(done_line(i, total, cell, summary, reused=dense is not None), flush=True)
            write_results(output_dir, collect_results(output_dir, cells))
    if config.multilingual:
        from .multilingual import run_multilingual

        run_multilingual(config, languages, output_dir)
    return from_main(lambda: _finish(output_dir, cells, started))


def next_cell(config: SweepConfig, cells: list[Cell], output_dir: Path,
              announced: set[int]) -> tuple[int, str | None] | str | None:
    """Claim the first cell this process can run now: ``(number, dense folder or None)``; ``"wait"`` while other
    processes hold the remaining cells; None when every cell is done (or was run by this process)."""
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
        earlier = previous_imp_cell(config, cell)
        dense_dir = Cell(cell.language, "none", 0.0, cell.seed).directory(output_dir)
        needs_dense = config.reuse_dense and cell.method in ("omp", "imp") and earlier is None
        needed = earlier.directory(output_dir) if earlier else dense_dir if needs_dense else None
        if needed is not None and not is_completed(needed) and (needed / "claimed.pid").exists():
            waiting = True  # another process is running the cell this one continues from
            continue
        if earlier is not None and not is_completed(needed):
            raise ConfigError(f"{cell.label()}: continues {earlier.label()}, which did not finish")
        if not claim_cell(directory):
            waiting = True
            continue
        return i, (str(dense_dir) if needs_dense and is_completed(dense_dir) else None)
    if waiting and not all(is_completed(c.directory(output_dir)) for c in cells):
        return "wait"
    return None




def run_cell(config: SweepConfig, language: LanguageData, cell: Cell, output_dir: Path) -> dict[str, Any]:
    """Run (or resume, from its checkpoints) one cell; every launcher calls this. Returns run_prune's summary.

    OMP/IMP reuse the dense cell's fine-tuning when that cell has finished (the launchers run it first)."""
    from ..methods import run_prune

    dense_dir = Cell(cell.language, "none", 0.0, cell.seed).directory(output_dir)
    needs_dense = config.reuse_dense and cell.method in ("omp", "imp") and previous_imp_cell(config, cell) is None
    dense = str(dense_dir) if needs_dense and is_completed(dense_dir) else None
    return run_prune(*cell_arguments(config, language, cell, output_dir, dense))


def _collect_only(output_dir: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    rows = collect_results(output_dir, cells)
    if output_dir.is_dir():
        write_results(output_dir, rows)
    print(f"sweep: {len(rows)} of {len(cells)} cells finished; results in {output_dir / 'results.csv'} "
          f"(collect only: nothing was run)", flush=True)
    return rows


def _finish(output_dir: Path, cells: list[Cell], started: float) -> list[dict[str, Any]]:
    rows = collect_results(output_dir, cells)
    write_results(output_dir, rows)
    print(f"sweep: {len(rows)} result rows in {output_dir / 'results.csv'} "
          f"({time.time() - started:.0f} s this run)", flush=True)
    return rows


def check_finished_cells(config: SweepConfig, languages: dict[str, LanguageData], cells: list[Cell],
                         output_dir: Path) -> None:
    """Refuse a sweep folder whose finished cells ran with other settings: skipping them would mix schedules."""
    from ..methods.base import differing_settings
    from ..records import jsonable

    for cell in cells:
        directory = cell.directory(output_dir)
        if not is_completed(directory):
            continue
        recorded = read_run(directory).arguments
        data, model, train, prune = cell_arguments(config, languages[cell.language], cell, output_dir)
        expected = jsonable({"data": data, "model": model, "train": train, "prune": prune})
        differing = differing_settings(recorded, expected, ("data", "model", "train", "prune"))
        if differing:
            fields = "; ".join(f"{section}: {', '.join(keys)}" for section, keys in differing.items())
            raise ConfigError(f"{directory}: this finished cell ran with other settings ({fields}); give the "
                              "sweep another output_dir, or delete the cell to rerun it with this schedule")


