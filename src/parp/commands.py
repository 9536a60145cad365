"""Sub-commands of the later pipeline stages (pruning, synthesis, pretraining, experiments), registered lazily."""

from __future__ import annotations

from .cli import SPECIAL, Command, register


def _prune_args():
    from .methods import PruneArguments
    from .training.finetune import DataArguments, ModelArguments
    from .training.loop import TrainConfig

    return [PruneArguments, DataArguments, ModelArguments, TrainConfig]


def _prune(prune, data, model, train):
    import json

    from .methods import run_prune

    print(json.dumps(run_prune(data, model, train, prune), indent=2, default=str))


register("prune", Command("Prune with PARP, OMP, IMP, MPI or random masks (plus fine-tuning) and export.",
                          _prune_args, _prune))


def _pretrain_args():
    from .pretrain.recipe import PretrainConfig

    return [PretrainConfig]


def _pretrain(config):
    import json

    from .pretrain.recipe import run_pretrain

    record = run_pretrain(config)
    print(json.dumps({k: record[k] for k in ("steps", "train_seconds", "audio_seconds_per_second", "final_metrics")}))


register("pretrain", Command("Self-supervised pretraining (BEST-RQ or wav2vec 2.0) of a small wav2vec2 encoder.",
                             _pretrain_args, _pretrain))


def _synth_args():
    from .synth.corpus import SynthConfig

    return [SynthConfig]


def _synth(config):
    from .synth.corpus import run_synth

    for manifest in run_synth(config):
        print(manifest)


register("synth", Command("Synthesise a labelled multilingual speech corpus offline with eSpeak NG.", _synth_args,
                          _synth))


def _sweep_args():
    from .experiments.sweep import SweepConfig

    return [SweepConfig]


def _sweep(config):
    from .experiments.sweep import run_sweep

    run_sweep(config)


register("sweep", Command("Run methods x sparsities x languages x seeds with one schedule; results.csv/json.",
                          _sweep_args, _sweep))


def _report_args():
    from .reports.report import ReportArguments

    return [ReportArguments]


def _report(args):
    from .reports.report import run_report

    run_report(args)


register("report", Command("Markdown report with plots (error, cost, per-layer sparsity, mask overlap) from a sweep.",
                           _report_args, _report))


def _demo_args():
    from .experiments.demo import DemoArguments

    return [DemoArguments]


def _demo(args):
    from .experiments.demo import run_demo

    run_demo(args)


register("demo", Command("Offline demo: synthesise a small unseen-language task, fine-tune, OMP + PARP, report.",
                         _demo_args, _demo))


def _masks_main(argv):
    from .experiments.masks import masks_main

    masks_main(argv)


# positional sub-actions (``parp masks compare A B``) do not fit the dataclass flags, so it parses its own argv
SPECIAL["masks"] = ("Compare pruning masks: IoU and overlap of pruned sets, overall and per layer.", _masks_main)
