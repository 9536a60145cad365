"""The command table of ``parp``: every sub-command's help, argument dataclasses and entry point, in one place.

A key of two words (``card install``) is a command with actions: ``parp card install ...``; a command can have
both its own options and actions (``parp pretrain ...``, ``parp pretrain downstream ...``).

Arguments and entry points are imported lazily, so ``parp --help`` loads no torch; ``parp.cli`` parses and runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass
class Command:
    help: str
    arguments: Callable[[], list[type]]  # lazy: importing torch/transformers only for the command that runs
    run: Callable[..., object]


def _finetune_args():
    from .data import DataArguments
    from .models import ModelArguments
    from .training.config import TrainConfig

    return [DataArguments, ModelArguments, TrainConfig]


def _finetune(data, model, train):
    from .training.finetune import run_finetune

    print(json.dumps(run_finetune(data, model, train).summary(), indent=2))


def _evaluate_args():
    from .evaluation.evaluate import EvaluateArguments

    return [EvaluateArguments]


def _evaluate(args):
    from .evaluation.evaluate import run_evaluate

    print(json.dumps(run_evaluate(args), indent=2))


def _transcribe_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="parp transcribe", description="Print the transcript of each audio file.")
    parser.add_argument("model", help="Fine-tuned model folder (as written by parp finetune / prune).")
    parser.add_argument("files", nargs="+", help="Audio files (wav, flac, ogg; any rate, any channels).")
    parser.add_argument("--device", default="auto", help="auto (cuda when a GPU is visible, else cpu) | cpu | cuda.")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on a GPU) | fp32 | bf16.")
    parser.add_argument("--max-batch-seconds", type=float, default=120.0, help="Cap on padded audio per batch.")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx"],
                        help="torch (the model folder) | onnx (a folder of parp export onnx; onnxruntime on CPU).")
    args = parser.parse_args(list(argv))
    from .errors import AudioError

    if args.backend == "onnx":
        from .export.onnx_session import OnnxCTC

        results = OnnxCTC(args.model).transcribe_files(args.files)
    else:
        from .evaluation.evaluate import transcribe

        results = transcribe(args.model, args.files, args.device, args.precision, args.max_batch_seconds)
    for path, text in results:
        print(f"{path}\t{text}")
    failed = sum(text.startswith("<error: ") for _, text in results)
    if failed == len(results):  # nothing transcribed is a failure, not an empty success
        raise AudioError(f"{len(results)} file(s)" if len(results) > 1 else results[0][0],
                         "none could be transcribed (see <error: ...> above)")
    if failed:  # skipped and counted, like bad audio in training and evaluation
        print(f"parp: {failed} of {len(results)} file(s) could not be transcribed (see <error: ...> above)",
              file=sys.stderr)


def _prune_args():
    from .data import DataArguments
    from .methods import PruneArguments
    from .models import ModelArguments
    from .training.config import TrainConfig

    return [PruneArguments, DataArguments, ModelArguments, TrainConfig]


def _prune(prune, data, model, train):
    from .methods import run_prune

    print(json.dumps(run_prune(data, model, train, prune), indent=2, default=str))


def _pretrain_args():
    from .pretrain.recipe import PretrainConfig

    return [PretrainConfig]


def _pretrain(config):
    from .pretrain.recipe import run_pretrain

    record = run_pretrain(config)
    print(json.dumps({k: record[k] for k in ("steps", "train_seconds", "audio_seconds_per_second", "final_metrics")}))


def _downstream_args():
    from .data import DataArguments
    from .models import ModelArguments
    from .pretrain.downstream import DownstreamArguments
    from .training.config import TrainConfig

    return [DownstreamArguments, DataArguments, ModelArguments, TrainConfig]


def _downstream(args, data, model, train):
    from .pretrain.downstream import run_downstream

    summary = run_downstream(args, data, model, train)
    for arm, curve in summary["arms"].items():
        print(arm, curve["final"], curve["best"])


def _synth_args():
    from .synth.corpus import SynthConfig

    return [SynthConfig]


def _synth(config):
    from .synth.corpus import run_synth

    for manifest in run_synth(config):
        print(manifest)


def _sweep_args():
    from .experiments.grid import SweepConfig
    from .experiments.launchers import LaunchArguments

    return [SweepConfig, LaunchArguments]


def _sweep(config, launch):
    from .experiments.sweep import run_sweep

    run_sweep(config, launch=launch)


def _report_args():
    from .reports.report import ReportArguments

    return [ReportArguments]


def _report(args):
    from .reports.report import run_report

    run_report(args)


def _demo_args():
    from .experiments.demo import DemoArguments

    return [DemoArguments]


def _demo(args):
    from .experiments.demo import run_demo

    run_demo(args)


def _card_install_args():
    from .pretrain.card import CardInstallArguments

    return [CardInstallArguments]


def _card_install(args):
    from .pretrain.card import run_card_install

    print(run_card_install(args))


def _card_update_args():
    from .pretrain.card import CardComparisonArguments

    return [CardComparisonArguments]


def _card_update(args):
    from .pretrain.card import run_card_update

    print(run_card_update(args))


def _export_onnx_args():
    from .export.onnx import OnnxExportArguments

    return [OnnxExportArguments]


def _export_onnx(args):
    from .export.onnx import run_export_onnx

    print(json.dumps(run_export_onnx(args), indent=2))


def _masks_main(argv):
    from .experiments.masks import masks_main

    masks_main(argv)


COMMANDS: dict[str, Command] = {
    "finetune": Command("Fine-tune an SSL speech encoder with CTC (no pruning).", _finetune_args, _finetune),
    "evaluate": Command("Score a fine-tuned model on a manifest: WER, CER, per-utterance TSV.", _evaluate_args,
                        _evaluate),
    "prune": Command("Prune with PARP, OMP, IMP, MPI or random masks (plus fine-tuning) and export.",
                     _prune_args, _prune),
    "pretrain": Command("Self-supervised pretraining (BEST-RQ or wav2vec 2.0) of a small wav2vec2 encoder.",
                        _pretrain_args, _pretrain),
    # what pretraining bought: fine-tune the encoder and the same architecture from random init, same schedule
    "pretrain downstream": Command("Fine-tune a pretrained encoder and its random initialisation alike; compare CER "
                                   "curves (downstream.json, downstream.png).", _downstream_args, _downstream),
    "synth": Command("Synthesise a labelled multilingual speech corpus offline with eSpeak NG.", _synth_args, _synth),
    "sweep": Command("Run methods x sparsities x languages x seeds with one schedule; results.csv/json.",
                     _sweep_args, _sweep),
    "report": Command("Markdown report with plots (error, cost, per-layer sparsity, mask overlap) from a sweep.",
                      _report_args, _report),
    "demo": Command("Offline demo: synthesise a small unseen-language task, fine-tune, OMP + PARP, report.",
                    _demo_args, _demo),
    "export onnx": Command("Export a CTC model folder to ONNX (optionally int8), checked against torch.",
                           _export_onnx_args, _export_onnx),
    # maintainer commands: a pretraining run becomes the embedded default, its card written from its records
    "card install": Command("Install a parp pretrain run as the embedded default model with its model card.",
                            _card_install_args, _card_install),
    "card update-comparison": Command("Rewrite the objective-choice section of an installed model card.",
                                      _card_update_args, _card_update),
}
# positional arguments (``parp masks compare A B``, audio files) do not fit the dataclass flags: these parse
# their own argv
SPECIAL: dict[str, tuple[str, Callable[[Sequence[str]], None]]] = {
    "transcribe": ("Print transcripts of audio files with a fine-tuned model.", _transcribe_main),
    "masks": ("Compare pruning masks: IoU and overlap of pruned sets, overall and per layer.", _masks_main),
}
