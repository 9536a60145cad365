"""Sub-commands of the later pipeline stages (pruning, synthesis, pretraining, experiments), registered lazily."""

from __future__ import annotations

from .cli import Command, register


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


def _synth_args():
    from .synth.corpus import SynthConfig

    return [SynthConfig]


def _synth(config):
    from .synth.corpus import run_synth

    for manifest in run_synth(config):
        print(manifest)


register("synth", Command("Synthesise a labelled multilingual speech corpus offline with eSpeak NG.", _synth_args,
                          _synth))
