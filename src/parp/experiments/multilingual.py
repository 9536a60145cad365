"""The paper's one-run multilingual subnetwork: PARP once on the union of several languages' training sets.

Each language keeps exactly the training / validation utterances its own cells use (same split, same subsets);
the union becomes one manifest and one vocabulary covering every language. The resulting model is scored on each
language's validation set separately, and its mask is compared (IoU of the pruned sets) with each language's own
PARP mask, so ``results.csv`` holds one ``parp-multi`` row per language next to the per-language rows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import shared_values
from ..data import DataArguments, load_utterances
from ..evaluation.evaluate import EvaluateArguments, run_evaluate
from ..methods import run_prune
from ..models import ModelArguments
from ..records import is_completed
from ..sparsity import Mask
from .cells import (MULTILINGUAL, Cell, LanguageData, cell_result, data_arguments, data_sizes, prune_arguments,
                    seeds_of, train_config_for)
from .claims import claim_cell, claim_heartbeat

if TYPE_CHECKING:
    from ..training.config import TrainConfig
    from .grid import SweepConfig

METHOD = "parp-multi"


def multilingual_method(config: SweepConfig) -> str:
    """``parp-multi``, or ``parp-multi-<updates>`` where ``multilingual_steps`` gives the run another budget than
    the per-language cells: runs of both budgets then live side by side in one sweep folder and one report."""
    steps = config.multilingual_steps
    return METHOD if not steps or steps == config.max_steps else f"{METHOD}-{steps}"


def write_manifest(path: Path, utterances) -> Path:
    """A TSV manifest with absolute audio paths (so it can live anywhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["path\tspeaker\tduration\ttext"]
    for u in utterances:
        duration = "" if u.duration is None else f"{u.duration:.3f}"
        text = u.text.replace("\t", " ").replace("\n", " ")
        lines.append(f"{Path(u.path).resolve()}\t{u.speaker or ''}\t{duration}\t{text}")
    _write_atomic(path, "\n".join(lines) + "\n")
    return path


def _write_atomic(path: Path, text: str) -> None:
    """Several workers write the same files: each replaces it whole, so none reads a half-written one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def union_languages(config: SweepConfig, languages: list[LanguageData]) -> tuple[list[LanguageData], list[str]]:
    """The languages one multilingual model can learn together: one vocabulary needs one kind of unit, so a
    language with its own ``token_unit`` or ``text_column`` (East Tusom as IPA phones among letters) is left out,
    by name. Returns (the union's languages, the names left out)."""
    def unit(language):
        data = data_arguments(config, language)
        return data.token_unit or "char", data.text_column
    shared_unit = unit(LanguageData("", ""))  # a language without options of its own: the grid's unit
    kept = [language for language in languages if unit(language) == shared_unit]
    return kept, [language.name for language in languages if language not in kept]


def build_multilingual_data(config: SweepConfig, languages: list[LanguageData], folder: Path) -> dict[str, Any]:
    """Union train / valid manifests plus one validation manifest per language, from the cells' own splits (each
    language's clips chosen by its own options), and the data settings the union run needs to keep all of them."""
    train_all, valid_all, per_language = [], [], {}
    settings = [data_arguments(config, language, data_sizes(config)[0]) for language in languages]
    for language, data in zip(languages, settings):
        train, valid, _ = load_utterances(data)
        train_all += train
        valid_all += valid
        per_language[language.name] = str(write_manifest(folder / f"valid-{language.name}.tsv", valid))
    return {"train": str(write_manifest(folder / "train.tsv", train_all)),
            "valid": str(write_manifest(folder / "valid.tsv", valid_all)), "valid_per_language": per_language,
            "settings": {"min_seconds": min(d.min_seconds for d in settings),
                         "max_seconds": max(d.max_seconds for d in settings),
                         "allow_unknown_chars": any(d.allow_unknown_chars for d in settings)}}


def run_multilingual(config: SweepConfig, languages: list[LanguageData], output_dir: Path,
                     poll_seconds: float = 10.0) -> list[dict[str, Any]]:
    """Run (or reuse) the multilingual PARP cells, score them per language, write multilingual-results.json.

    Each cell is claimed like every sweep cell (``claimed.pid``): with two workers on one folder, one trains and
    scores it while the other waits for it instead of training it a second time."""
    languages, left_out = union_languages(config, languages)
    if left_out:
        print(f"[multilingual] left out of the union (their units differ from the grid's): {', '.join(left_out)}",
              flush=True)
    data = build_multilingual_data(config, languages, output_dir / "multilingual-data")
    method = multilingual_method(config)
    hours = data_sizes(config)[0]  # one data size (the grid refuses more)
    rows = []
    for sparsity in sorted({float(s) for s in config.sparsities if s > 0}):
        for seed in seeds_of(config):
            cell = Cell(MULTILINGUAL, method, sparsity, seed, train_hours=hours)
            directory = cell.directory(output_dir)
            metrics_paths = {lang.name: directory / "eval" / lang.name / "metrics.json" for lang in languages}
            announced = False
            while not (is_completed(directory) and all(p.is_file() for p in metrics_paths.values())):
                if claim_cell(directory):
                    try:
                        with claim_heartbeat(directory):
                            _train_and_score(config, languages, data, cell, directory, metrics_paths)
                    finally:
                        (directory / "claimed.pid").unlink(missing_ok=True)
                    break
                if not announced:
                    print(f"[multilingual] {cell.label()}: another worker runs it; waiting", flush=True)
                    announced = True
                time.sleep(poll_seconds)
            else:
                print(f"[multilingual] {cell.label()}: completed earlier, skipped", flush=True)
            shared = cell_result(cell, output_dir)  # cost and mask of the one run, shared by every language
            multi_mask = Mask.load(output_dir / shared["mask"])
            for language in languages:
                metrics = json.loads(metrics_paths[language.name].read_text(encoding="utf-8"))
                own = Cell(language.name, "parp", sparsity, seed, train_hours=hours)
                iou = None
                if is_completed(own.directory(output_dir)):
                    own_mask = Mask.load(output_dir / cell_result(own, output_dir)["mask"])
                    iou = round(multi_mask.iou(own_mask), 6)
                errors = {k: metrics.get(k) for k in ("wer", "cer", "per")}  # per: phone targets
                rows.append({**shared, "language": language.name, **errors, "iou_with_language_mask": iou})
                print(f"[multilingual] {language.name} s={sparsity:g} seed={seed}: "
                      + " ".join(f"{k.upper()} {v:.3f}" for k, v in errors.items() if v is not None)
                      + (f", IoU with its own PARP mask {iou:.3f}" if iou is not None else ""), flush=True)
    results = output_dir / "multilingual-results.json"  # the rows of runs with another budget stay
    kept = [r for r in json.loads(results.read_text(encoding="utf-8")) if r.get("method") != method] \
        if results.is_file() else []
    _write_atomic(results, json.dumps(kept + rows, indent=2))
    return rows


def multilingual_train_config(config: SweepConfig, directory: Path, seed: int) -> TrainConfig:
    """The sweep's schedule, with ``multilingual_steps`` updates where set (one run covers every language's data)."""
    train = train_config_for(config, directory, seed)
    return dataclasses.replace(train, max_steps=config.multilingual_steps) if config.multilingual_steps else train


def _train_and_score(config: SweepConfig, languages: list[LanguageData], data: dict[str, Any], cell: Cell,
                     directory: Path, metrics_paths: dict[str, Path]) -> None:
    """PARP on the union (unless finished), then each language's validation set scored (unless scored)."""
    if not is_completed(directory):
        print(f"[multilingual] {cell.label()}: PARP on {', '.join(l.name for l in languages)} at once", flush=True)
        run_prune(DataArguments(train_manifest=data["train"], valid_manifest=data["valid"],
                                token_unit=config.token_unit, **data["settings"]),
                  ModelArguments(**shared_values(config, ModelArguments)),
                  multilingual_train_config(config, directory, cell.seed), prune_arguments(config, "parp", cell.sparsity))
    for language in languages:
        if not metrics_paths[language.name].is_file():
            run_evaluate(EvaluateArguments(model=str(directory / "model"),
                                           manifest=data["valid_per_language"][language.name],
                                           output_dir=str(metrics_paths[language.name].parent),
                                           progress=config.progress))
