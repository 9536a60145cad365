"""A sweep's grid: ``SweepConfig`` (languages x methods x sparsities x seeds plus the one fine-tuning schedule every
cell shares), its languages, the cells in run order, and the check that a folder's finished cells ran with this
grid's settings. The scheduling is ``sweep.py``; a cell's run arguments and result row are ``cells.py``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import CONFIG_TYPE_KEY, load_config_file, shared
from ..data import DataArguments
from ..data.text import TOKEN_UNITS
from ..errors import ConfigError
from ..methods import PruneArguments
from ..methods.arguments import METHOD_NAMES
from ..methods.compatibility import differing_settings
from ..models import ModelArguments, encoder_identity
from ..records import is_completed, jsonable, read_run
from ..sparsity import validate_sparsity
from ..training.config import TrainConfig
from .cells import (LANGUAGE_OPTIONS, LANGUAGE_SCHEDULE_OPTIONS, MULTILINGUAL, Cell, LanguageData, cell_arguments,
                    data_sizes, prerequisite, seeds_of)
from .multilingual import union_languages
from .transfer import transfer_cells


@dataclass
class SweepConfig(TrainConfig):
    """The grid of a sweep plus the one fine-tuning schedule every cell shares (all TrainConfig fields).

    ``freeze_transformer_steps`` stays 0 for every method: the official code froze the transformer for 10k
    updates in the baselines but not in PARP; a fair comparison gives all methods the same schedule.
    """

    output_dir: str = shared(TrainConfig, "output_dir", default="runs/sweep",
                             help="Sweep folder: cells/, results.csv, report.")
    languages: list[str] = field(default_factory=list, metadata={
        "help": "NAME=TRAIN.tsv[,VALID.tsv] per language (in YAML also a mapping name -> path or {train, valid, "
                "and the language's own token_unit, allow_unknown_chars, text_column, min_seconds, max_seconds, "
                "and max_steps: its own N(d), for it and every cell trained on it}).",
        CONFIG_TYPE_KEY: dict})
    methods: list[str] = field(default_factory=lambda: ["omp", "parp"], metadata={
        "help": "Pruning methods (parp omp imp mpi random); the unpruned 'none' cell always runs as reference."})
    sparsities: list[float] = field(default_factory=lambda: [0.5, 0.7], metadata={
        "help": "Target sparsities; 0 means the unpruned 'none' method (run once per language and seed)."})
    seeds: list[int] | None = field(default=None, metadata={
        "help": "Seeds (initialisation, data order, masking) to repeat every cell with (default: [seed])."})
    train_hours: list[str] | None = field(default=None, metadata={
        "help": "Data sizes: repeat the grid on nested subsets of each language's training set, e.g. 0.167 1 all "
                "(10 min, 1 h, all of it; see --train-hours of parp finetune), smallest first; results.csv gets a "
                "train_hours column. Default: all the data, as before.", CONFIG_TYPE_KEY: list})
    # the cells' data, model and pruning options: fields of DataArguments / ModelArguments / PruneArguments, whose
    # defaults they keep (cells.cell_arguments hands them back)
    model: str | None = shared(ModelArguments, "model")
    mask_time_prob: float = shared(ModelArguments, "mask_time_prob")
    ctc_head_init: str = shared(ModelArguments, "ctc_head_init")
    max_train_utterances: int | None = shared(DataArguments, "max_train_utterances",
                                              help="Seeded training subset per language.")
    max_valid_utterances: int | None = shared(DataArguments, "max_valid_utterances",
                                              help="Seeded validation subset per language.")
    valid_fraction: float = shared(DataArguments, "valid_fraction")
    text_column: str | None = shared(DataArguments, "text_column", help=(
        "Transcript column of every manifest (default 'text'; 'phones' for parp synth --transcripts phones)."))
    token_unit: str | None = shared(DataArguments, "token_unit", help=(
        "CTC output units in every cell: char (default) | phone (space-separated phones, scored as PER) | "
        "ipa-phone (IPA text cut into phones by ipatok, scored as PER)."))
    allow_unknown_chars: bool = shared(DataArguments, "allow_unknown_chars", help=(
        "Validation characters/phones missing from a cell's training vocabulary count as errors ([UNK]) "
        "instead of stopping the cell (rare phones of a tonal language can occur only in validation)."))
    split_seed: int = shared(DataArguments, "split_seed", help="Seed of the held-out split (the same in every cell).")
    max_seconds: float = shared(DataArguments, "max_seconds", help=(
        "Drop longer clips in every cell (a language's own max_seconds in 'languages:' wins)."))
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
    reuse_cells_from: list[str] | None = field(default=None, metadata={
        "help": "Other sweeps' output folders: a cell one of them finished with this grid's exact recipe (data "
                "subset, schedule, seed, encoder) is linked in instead of run again (experiments/adopt.py)."})
    multilingual: bool = field(default=False, metadata={
        "help": "Also run PARP once on the union of all languages (method 'parp-multi') and score it per language."})
    multilingual_steps: int | None = field(default=None, metadata={
        "help": "Updates of the multilingual run (default: max_steps). max_steps times the number of languages shows "
                "it each language's data as often as the per-language runs see theirs."})
    transfer: bool = field(default=False, metadata={
        "help": "Transfer matrix: for every ordered pair (A, B) of languages, PARP-P' on B from A's OMP mask "
                "(method 'transfer') and PARP on B from a random mask with the same per-tensor sparsities "
                "(method 'transfer-random'), at every pruned sparsity and seed; needs methods omp and parp."})
    transfer_sources: list[str] | None = field(default=None, metadata={
        "help": "Transfer only the masks of these languages (to every other language); default: all languages."})
    only_cells: list[str] | None = field(default=None, metadata={
        "help": "Run (and collect) only the grid's cells whose folder under cells/ matches one of these shell "
                "patterns, e.g. 'ky/omp/s0.5/seed1' or 'nl/transfer-from-*/s0.5/seed1', plus the cells they "
                "continue (dense cell, transfer source): a slice of a large grid for one machine, the rest elsewhere."})
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
    """``["fi=train.tsv,valid.tsv"]`` or ``{"fi": "train.tsv"}`` / ``{"fi": {"train": ..., "valid": ...}}``, the
    mapping form also with the language's own data options (``LANGUAGE_OPTIONS``, e.g. ``token_unit: ipa-phone``)
    and updates (``max_steps``)."""
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
        options: dict[str, Any] = {}
        if isinstance(value, dict):
            train, valid = value.get("train"), value.get("valid")
            options = {k: v for k, v in value.items() if k not in ("train", "valid")}
            allowed = LANGUAGE_OPTIONS + LANGUAGE_SCHEDULE_OPTIONS
            unknown = sorted(set(options) - set(allowed))
            if unknown:
                raise ConfigError(f"language {name!r}: unknown option(s) {', '.join(map(str, unknown))} (a language "
                                  f"may set train, valid, {', '.join(allowed)})")
        else:
            train, _, valid = str(value).partition(",")
        if not train:
            raise ConfigError(f"language {name!r}: no training manifest given")
        if "/" in str(name) or str(name) in (MULTILINGUAL, ""):
            raise ConfigError(f"language name {name!r} cannot be a folder name (or {MULTILINGUAL!r})")
        result.append(LanguageData(str(name), str(train), str(valid) if valid else None,
                                   tuple(sorted(_checked_options(name, options).items()))))
    if not result:
        raise ConfigError("the sweep names no languages: give --languages NAME=TRAIN.tsv (or a 'languages:' mapping)")
    if len({r.name for r in result}) != len(result):
        raise ConfigError(f"duplicate language names in {[r.name for r in result]}")
    return result


def _checked_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A language's own data options, typed like DataArguments' fields (YAML gives strings and numbers)."""
    checked = {}
    for key, value in options.items():
        if key in ("min_seconds", "max_seconds"):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"language {name!r}: {key} must be a number of seconds, got {value!r}") from None
        elif key == "max_steps":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"language {name!r}: max_steps must be a whole number of updates >= 1, got {value!r}")
        elif key == "allow_unknown_chars":
            if not isinstance(value, bool):
                raise ConfigError(f"language {name!r}: allow_unknown_chars must be true or false, got {value!r}")
        elif key == "token_unit" and value not in TOKEN_UNITS:
            raise ConfigError(f"language {name!r}: token_unit must be {' | '.join(TOKEN_UNITS)}, got {value!r}")
        checked[key] = value
    return checked


def validate_sweep(config: SweepConfig) -> tuple[list[LanguageData], list[Cell]]:
    """Check the grid before any minute is spent; return the languages and the cells in run order."""
    languages = parse_languages(config.languages)
    for method in config.methods:
        if method not in METHOD_NAMES:
            raise ConfigError(f"--methods: unknown method {method!r} (choose from {', '.join(METHOD_NAMES)})")
    for s in config.sparsities:
        validate_sparsity(s, "--sparsities")
    if config.multilingual and len(union_languages(config, languages)[0]) < 2:
        raise ConfigError("multilingual: true needs at least two languages with the grid's token_unit and "
                          "text_column (one vocabulary for all of them)")
    pruned = sorted({float(s) for s in config.sparsities if s > 0})
    methods = [m for m in dict.fromkeys(config.methods) if m != "none"]
    sizes = data_sizes(config)
    if config.multilingual and len(sizes) > 1:
        raise ConfigError(f"multilingual: true runs on one data size, got train_hours {config.train_hours}")
    cells = []
    for hours in sizes:  # the smallest data size first: it converges fastest
        for language in languages:
            for seed in seeds_of(config):
                dense = Cell(language.name, "none", 0.0, seed, train_hours=hours)
                cells.append(dense)  # first: the reference, and OMP/IMP's dense phase
                cells += [dataclasses.replace(dense, method=m, sparsity=s) for m in methods for s in pruned]
    cells += [c for hours in sizes for c in transfer_cells(config, languages, hours)]  # last: each waits for its
    # source's OMP cell
    return languages, select_cells(config, cells) if config.only_cells else cells


def cell_name(cell: Cell) -> str:
    """A cell's folder under ``cells/`` (``ky/omp/s0.5/seed1``): what ``only_cells`` patterns match."""
    return cell.directory(Path(".")).relative_to("cells").as_posix()


def select_cells(config: SweepConfig, cells: list[Cell]) -> list[Cell]:
    """The cells matching ``only_cells`` and, recursively, the cells they continue, in grid order."""
    chosen: set[Cell] = set()
    for pattern in config.only_cells:
        matched = [c for c in cells if fnmatch.fnmatchcase(cell_name(c), pattern)]
        if not matched:
            raise ConfigError(f"--only_cells: {pattern!r} matches no cell of the grid (cell folders look like "
                              f"{cell_name(cells[-1])})")
        chosen.update(matched)
    todo = list(chosen)
    while todo:
        earlier = prerequisite(config, todo.pop())
        if earlier is not None and earlier not in chosen:
            chosen.add(earlier)
            todo.append(earlier)
    return [c for c in cells if c in chosen]


def _describe(encoder: dict) -> str:
    steps = encoder.get("pretraining_steps")
    return encoder.get("source", "?") + (f", {steps} pretraining updates" if steps is not None else "")


def check_finished_cells(config: SweepConfig, languages: dict[str, LanguageData], cells: list[Cell],
                         output_dir: Path) -> None:
    """Refuse a sweep folder whose finished cells ran with other settings: skipping them would mix schedules."""
    encoder = encoder_identity(config.model)
    for cell in cells:
        directory = cell.directory(output_dir)
        if not is_completed(directory):
            continue
        run = read_run(directory)
        if run.encoder not in (None, encoder):  # records of older parp lack it: judged by settings alone
            raise ConfigError(f"{directory}: this finished cell fine-tuned another encoder "
                              f"({_describe(run.encoder)}; this sweep's is {_describe(encoder)}); "
                              "give the sweep another output_dir")
        recorded = run.arguments
        data, model, train, prune = cell_arguments(config, languages[cell.language], cell, output_dir)
        expected = jsonable({"data": data, "model": model, "train": train, "prune": prune})
        differing = differing_settings(recorded, expected, ("data", "model", "train", "prune"))
        if differing:
            fields = "; ".join(f"{section}: {', '.join(keys)}" for section, keys in differing.items())
            raise ConfigError(f"{directory}: this finished cell ran with other settings ({fields}); give the "
                              "sweep another output_dir, or delete the cell to rerun it with this schedule")
