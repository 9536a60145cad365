"""Every method with --scope ffn: whole neurons pruned; PARP lets them grow back and re-prunes to exactly the target."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_tiny_prune, synthetic_corpus, tiny_model_dir

from parp.errors import ConfigError
from parp.sparsity.structured import ffn_blocks, ffn_parameters
from parp.training.hooks import TrainingHook

WIDTH = 64  # intermediate_size of helpers.tiny_model_dir


class NeuronProbe(TrainingHook):
    """Per phase and step: which FFN neurons are silenced (fc1 row and bias zero) and which entirely zero."""

    name = "neuron-probe"

    def __init__(self):
        self.phases: list[list[dict[str, torch.Tensor]]] = []
        self.whole: list[list[dict[str, torch.Tensor]]] = []

    def on_train_begin(self, state):
        self.phases.append([_neurons(state.model)])
        self.whole.append([_neurons(state.model, whole=True)])

    def on_step_end(self, state):
        self.phases[-1].append(_neurons(state.model))
        self.whole[-1].append(_neurons(state.model, whole=True))


def _neurons(model, whole=False) -> dict[str, torch.Tensor]:
    params = ffn_parameters(model)
    dead = {}
    for b in ffn_blocks(params):
        zero = (params[b.fc1_weight] == 0).all(1) & (params[b.fc1_bias] == 0)
        if whole:
            zero &= (params[b.fc2_weight] == 0).all(0)
        dead[b.prefix] = zero.detach().clone()
    return dead


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return synthetic_corpus(root, n=16), tiny_model_dir(root / "model")


def _run(corpus, tmp_path, method, sparsity=0.5, steps=6, **prune):
    probe = NeuronProbe()
    return run_tiny_prune(corpus, tmp_path, method, probe, sparsity, steps, scope="ffn", **prune), probe


def _count(dead: dict[str, torch.Tensor]) -> list[int]:
    return [int(d.sum()) for d in dead.values()]


def test_parp_ffn_neurons_grow_back_then_are_re_pruned_to_exactly_the_target(corpus, tmp_path):
    summary, probe = _run(corpus, tmp_path, "parp", sparsity=0.5, steps=6, prune_every=3)
    steps = probe.phases[0]
    assert _count(steps[0]) == [WIDTH // 2, WIDTH // 2]  # pruned pretrained model: half the neurons, every layer
    assert sum(_count(steps[2])) < WIDTH, "pruned neurons must be free to grow back between re-prunes"
    assert _count(steps[3]) == [WIDTH // 2, WIDTH // 2]  # the re-prune at step 3
    assert sum(_count(probe.whole[0][3])) == 0  # while adjusting, fc2 columns stay open (see structured.py)
    assert summary["sparsity_achieved"] == pytest.approx(0.5)  # the final re-prune zeroes whole neurons
    compact = json.loads((tmp_path / "parp" / "model-compact" / "config.json").read_text())
    assert compact["intermediate_size"] == WIDTH // 2
    assert (tmp_path / "parp" / "model-compact" / "vocab.json").is_file()
    assert summary["compact_model"] == str(tmp_path / "parp" / "model-compact")


@pytest.mark.parametrize("method", ["omp", "mpi", "random", "imp"])
def test_fixed_mask_methods_keep_whole_neurons_pruned(corpus, tmp_path, method):
    summary, probe = _run(corpus, tmp_path, method, sparsity=0.75, steps=3, imp_rounds=2)
    last = probe.whole[-1]
    assert _count(last[-1]) == [48, 48]
    for dead in last[1:]:
        assert all(torch.equal(d, last[-1][k]) for k, d in dead.items())  # the same neurons all along
    assert summary["sparsity_achieved"] == pytest.approx(0.75)


def test_ffn_scope_refuses_weight_scope_options(corpus, tmp_path):
    with pytest.raises(ConfigError, match="--scope ffn .*--prune-feature-encoder"):
        _run(corpus, tmp_path, "omp", steps=1, prune_feature_encoder=True)
