"""A CTC fine-tuning job, top-down: corpora -> vocabulary -> datasets -> model -> the one loop.

``prepare_finetune`` builds everything once; pruning methods (``parp.methods``) reuse it and call
``train`` once per phase with their hooks. ``run_finetune`` is the plain full fine-tune of ``parp finetune``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, TypeVar

from accelerate import PartialState
from accelerate.utils import set_seed

from ..data.arguments import DataArguments, load_utterances
from ..data.dataset import SpeechDataset
from ..data.splits import subset_fingerprint
from ..data.text import Vocabulary, make_normalizer
from ..errors import ConfigError
from ..export.card import write_model_card
from ..models import ModelArguments, audio_input, encoder_identity, load_ctc_model, resolve_model_source
from ..records import Run, RunRecord
from .ctc import CTC_HEAD_INITS, CTCObjective, init_head_bias_to_prior
from .loop import TrainConfig, TrainResult, train, validate_train_config
from .output_lock import release_output_lock
from .resume_check import prepare_output_dir

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class FinetuneSetup:
    """Everything a method needs to run phases of the loop."""

    model_args: ModelArguments
    vocabulary: Vocabulary
    train_set: SpeechDataset
    valid_set: SpeechDataset
    objective: CTCObjective
    data_summary: dict

    def new_model(self, seed: int = 0):
        """A fresh CTC model from the pretrained encoder (same seed => same head initialisation)."""
        set_seed(seed)  # the fresh CTC head is drawn from the global RNGs
        a = self.model_args
        model = load_ctc_model(a.model, vocab_size=len(self.vocabulary), pad_token_id=self.vocabulary.pad_id,
                               mask_time_prob=a.mask_time_prob, mask_feature_prob=a.mask_feature_prob,
                               layerdrop=a.layerdrop, hidden_dropout=a.dropout, attention_dropout=a.dropout,
                               activation_dropout=a.dropout, final_dropout=a.dropout)
        if a.ctc_head_init == "prior":
            init_head_bias_to_prior(model, self.train_set)
        return model


def prepare_finetune(data_args: DataArguments, model_args: ModelArguments, progress: bool = True) -> FinetuneSetup:
    if not math.isfinite(data_args.valid_fraction) or not 0 < data_args.valid_fraction < 1:
        raise ConfigError(f"--valid-fraction must be between 0 and 1, got {data_args.valid_fraction}")
    # None keeps runs recorded before the option comparable; a bad value or a missing ipatok fails before the data
    normalizer, unit = make_normalizer(data_args.token_unit or "char", data_args.lowercase, data_args.drop_chars)
    if model_args.ctc_head_init not in CTC_HEAD_INITS:
        raise ConfigError(f"--ctc-head-init must be {' or '.join(CTC_HEAD_INITS)}, got {model_args.ctc_head_init!r}")
    resolve_model_source(model_args.model)  # a missing model folder fails before minutes of data checks
    audio = audio_input(model_args.model)  # the model's own sampling rate and normalisation
    train_utts, valid_utts, source = load_utterances(data_args)
    vocabulary = Vocabulary.build((u.text for u in train_utts), normalizer=normalizer, unit=unit)
    train_set = SpeechDataset(train_utts, vocabulary, audio.sampling_rate, min_seconds=data_args.min_seconds,
                              normalize=audio.do_normalize,
                              max_seconds=data_args.max_seconds, source=f"{source} (training)").validate(progress)
    valid_set = SpeechDataset(valid_utts, vocabulary, audio.sampling_rate, min_seconds=data_args.min_seconds,
                              normalize=audio.do_normalize,
                              max_seconds=data_args.max_seconds, allow_unknown=data_args.allow_unknown_chars,
                              source=f"{data_args.valid_manifest or source} (validation)").validate(progress)
    for name, dataset in (("training", train_set), ("validation", valid_set)):
        if len(dataset) == 0:
            raise ConfigError(f"{source}: no usable {name} utterances left after validation "
                              f"({len(dataset.skipped)} skipped)")
    summary = {
        "source": source,
        "train_utterances": len(train_set), "valid_utterances": len(valid_set),
        "train_hours": round(sum(train_set.durations) / 3600, 4),
        "train_hours_requested": data_args.train_hours,  # None: all of it
        "train_subset": subset_fingerprint(train_utts),  # equal in two runs = they trained on the same utterances
        "valid_hours": round(sum(valid_set.durations) / 3600, 4),
        "skipped": len(train_set.skipped) + len(valid_set.skipped),
        "skipped_files": [f"{p}: {r}" for p, r in (train_set.skipped + valid_set.skipped)][:50],
        "vocabulary_size": len(vocabulary),
        "token_unit": unit,
    }
    summary["audio_input"] = audio.to_dict()
    objective = CTCObjective(vocabulary, audio.sampling_rate, normalize=audio.do_normalize)
    return FinetuneSetup(model_args, vocabulary, train_set, valid_set, objective, summary)


def record_decode_failures(record: RunRecord, setup: FinetuneSetup) -> None:
    """Files that passed validation but failed to decode mid-run were skipped: count them with the others."""
    failures = setup.objective.decode_failures
    if failures:
        log.warning("%d file(s) failed to decode during the run and were skipped", len(failures))
        record.update("data", {"decode_failures": len(failures),
                               "skipped": setup.data_summary["skipped"] + len(failures),
                               "decode_failed_files": [f"{p}: {r}" for p, r in failures.items()][:50]})


@dataclass
class FinetuneResult:
    train: TrainResult
    record_path: Path

    def summary(self) -> dict[str, Any]:
        """What ``parp finetune`` prints and ``parp.finetune`` returns."""
        r = self.train
        return {"final": r.final_metrics, "best": r.best_metrics, "best_step": r.best_step, "steps": r.steps,
                "model": r.model_dir, "best_model": r.best_dir, "record": str(self.record_path)}


def open_run_record(command: str, arguments: dict, config: TrainConfig,
                    model_args: ModelArguments) -> tuple[RunRecord | None, int, Run | None]:
    """The record of a ``parp finetune`` / ``parp prune`` run, this process's rank, and the earlier run where the
    folder already holds this run completed (then no record is opened: nothing is rerun or rewritten).

    The folder's earlier run is checked first, the folder is locked for this run (``release_output_lock`` when
    it ends), under torchrun every process keeps its own record, and the record names the encoder (a default
    ``--model`` follows whichever encoder parp ships)."""
    output_dir = Path(config.output_dir)
    changes, finished = prepare_output_dir(output_dir, config.overwrite_output_dir, command, arguments)
    rank = int(os.environ.get("RANK", "0"))
    if finished is not None:
        release_output_lock(output_dir)
        print(f"parp: {output_dir}: this run already completed with these settings ({finished.path}); nothing "
              f"rerun. To run it again, add --overwrite-output-dir or use a new --output-dir", file=sys.stderr)
        return None, rank, finished
    record = RunRecord(output_dir / ("run.json" if rank == 0 else f"run.rank{rank}.json"), command, arguments)
    record.set("encoder", encoder_identity(model_args.model))
    if changes:
        record.set("changed_on_resume", changes)
    return record, rank, None


def _completed_result(run: Run) -> FinetuneResult:
    """What ``run_finetune`` returns for a run that had already completed, read from its record."""
    metrics, outputs, phase = run.metrics, run.data.get("outputs") or {}, run.phase("finetune")
    train_result = TrainResult(
        steps=phase.total_steps if phase else 0, epochs=0, wall_seconds=0.0,
        train_seconds=phase.train_seconds if phase else 0.0, train_audio_seconds=0.0, resumed_from_step=0,
        final_metrics=metrics.get("final") or {}, best_metrics=metrics.get("best") or {},
        best_step=metrics.get("best_step") or 0, history=run.history,
        model_dir=outputs.get("model") or str(run.path.parent / "model"), best_dir=outputs.get("best"))
    return FinetuneResult(train_result, run.path)


def run_job(command: str, arguments: dict, completed: Callable[[Run], T],
            body: Callable[[RunRecord, int, FinetuneSetup], tuple[T, Callable[[T], T]]]) -> T:
    """The one skeleton of a ``parp finetune`` / ``parp prune`` run (every method, ``none`` included): the run record
    (a finished run with the same settings is answered from its record, ``completed``), the output folder's lock, the
    data, vocabulary and model source once, then ``body`` (its phases and exports), and the record finished. ``body``
    returns its result and what to do once the record is final (model cards quote it)."""
    config, model_args = arguments["train"], arguments["model"]
    validate_train_config(config)
    record, rank, finished = open_run_record(command, arguments, config, model_args)
    if finished is not None:
        return completed(finished)
    try:
        setup = prepare_finetune(arguments["data"], model_args, progress=config.progress)
        record.update("data", setup.data_summary)
        result, after_finish = body(record, rank, setup)
        record_decode_failures(record, setup)
        record.finish()
        return after_finish(result)
    finally:
        release_output_lock(config.output_dir)


def phase_facts(result: TrainResult) -> dict[str, Any]:
    """What every recorded fine-tuning phase says of itself (its cost, where it stopped, its learning curve)."""
    facts = dict(steps=result.steps - result.resumed_from_step, total_steps=result.steps,
                 resumed_from_step=result.resumed_from_step, final=result.final_metrics,
                 train_seconds=result.train_seconds,
                 audio_seconds_per_second=round(result.audio_seconds_per_second, 2),
                 processes=PartialState().num_processes, best_step=result.best_step,
                 stopped_early=result.stopped_early, validation_curve=result.validation_curve)
    if result.earlier_wall_seconds:
        facts["earlier_wall_seconds"] = result.earlier_wall_seconds
    return facts


def run_finetune(data_args: DataArguments, model_args: ModelArguments, config: TrainConfig) -> FinetuneResult:
    """``parp finetune``: full fine-tuning (the 0 % sparsity baseline)."""
    return run_job("finetune", {"data": data_args, "model": model_args, "train": config}, _completed_result,
                   lambda record, rank, setup: _finetune(record, rank, setup, config))


def _finetune(record: RunRecord, rank: int, setup: FinetuneSetup, config: TrainConfig):
    model = setup.new_model(config.seed)
    with record.phase("finetune") as phase:
        result = train(model, setup.train_set, setup.valid_set, config, setup.objective)
        phase.update(phase_facts(result))
    record.update("metrics", {"final": result.final_metrics, "best": result.best_metrics,
                              "best_step": result.best_step})
    record.set("history", result.history)
    record.set("outputs", {"model": result.model_dir, "best": result.best_dir})

    def write_cards(done: FinetuneResult) -> FinetuneResult:
        if rank == 0:
            write_model_card(result.model_dir, record.data, result.final_metrics, argument_types=record.argument_types)
            if result.best_dir:
                write_model_card(result.best_dir, record.data, result.best_metrics,
                                 argument_types=record.argument_types)
        return done

    return FinetuneResult(result, record.path), write_cards


def with_output_dir(config: TrainConfig, sub: str) -> TrainConfig:
    """The same schedule in a sub-folder (used by multi-phase methods)."""
    return replace(config, output_dir=str(Path(config.output_dir) / sub))
