"""Pruning methods on the one loop: PARP regrows then re-prunes exactly; OMP/IMP/MPI keep zeros; IMP rewinds."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_tiny_prune, synthetic_corpus, tiny_model_dir

from parp.errors import ConfigError, MaskError
from parp.methods.imp import round_sparsities
from parp.sparsity import Mask, measure_sparsity, prunable_parameters
from parp.training.hooks import TrainingHook


class Probe(TrainingHook):
    """Records, per phase, the prunable weights after every step (small models only)."""

    name = "probe"

    def __init__(self):
        self.phases: list[list[dict[str, torch.Tensor]]] = []
        self.starts: list[dict[str, torch.Tensor]] = []

    def on_train_begin(self, state):
        self.phases.append([])
        self.starts.append({k: v.detach().clone() for k, v in prunable_parameters(state.model).items()})

    def on_step_end(self, state):
        self.phases[-1].append({k: v.detach().clone() for k, v in prunable_parameters(state.model).items()})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return synthetic_corpus(root), tiny_model_dir(root / "model")


def _run(corpus, tmp_path, method, sparsity=0.5, steps=8, **prune):
    probe = Probe()
    return run_tiny_prune(corpus, tmp_path, method, probe, sparsity, steps, **prune), probe


def _zeros(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v == 0 for k, v in weights.items()}


def test_parp_regrows_during_adjustment_and_ends_at_exact_sparsity(corpus, tmp_path):
    summary, probe = _run(corpus, tmp_path, "parp", sparsity=0.5, steps=8, prune_every=4)
    start = probe.starts[0]  # the probe runs after PARP's hook: the pretrained weights, already pruned
    total = sum(w.numel() for w in start.values())
    pruned_at_start = _zeros(start)
    assert sum(int(z.sum()) for z in pruned_at_start.values()) == total // 2
    # between re-prunes the pruned weights are trainable: after 3 updates some have grown back
    step_3 = probe.phases[0][2]
    regrown = sum(int((step_3[k][z] != 0).sum()) for k, z in pruned_at_start.items())
    assert regrown > 0, "masked weights must be free to grow back between re-prunes"
    assert sum(int((w == 0).sum()) for w in step_3.values()) < total // 2
    # right after the re-prune at step 4, exactly the target again
    assert sum(int((w == 0).sum()) for w in probe.phases[0][3].values()) == total // 2
    assert summary["sparsity_achieved"] == pytest.approx(0.5, abs=1 / total)
    assert summary["finetunings"] == 1 and summary["finetune_steps"] == 8
    record = json.loads((tmp_path / "parp" / "run.json").read_text())
    assert record["status"] == "completed"
    assert [p["name"] for p in record["phases"]] == ["finetune", "export"]


@pytest.mark.parametrize("method", ["omp", "mpi", "random"])
def test_fixed_mask_methods_keep_pruned_weights_at_zero(corpus, tmp_path, method):
    summary, probe = _run(corpus, tmp_path, method, sparsity=0.6, steps=6)
    masked_phase = probe.phases[-1]
    pruned = _zeros(masked_phase[0])
    for weights in masked_phase[1:]:
        for name, w in weights.items():
            assert torch.all(w[pruned[name]] == 0), f"{method}: a pruned weight of {name} moved"
    assert summary["sparsity_achieved"] == pytest.approx(0.6, abs=1e-3)
    assert summary["finetunings"] == (2 if method == "omp" else 1)


def test_imp_rewinds_survivors_to_pretrained_values(corpus, tmp_path):
    summary, probe = _run(corpus, tmp_path, "imp", sparsity=0.75, steps=4, imp_rounds=2)
    assert summary["finetunings"] == 3
    pretrained = probe.starts[0]
    for r in (1, 2):  # at the start of each masked round: survivors == pretrained, the rest exactly 0
        start = probe.starts[r]
        first = probe.phases[r][0]
        for name, w in start.items():
            survivors = first[name] != 0
            assert torch.equal(w[survivors], pretrained[name][survivors]) or torch.all(w == pretrained[name])
    final_zero = sum(int((w == 0).sum()) for w in probe.phases[-1][-1].values())
    total = sum(w.numel() for w in pretrained.values())
    assert final_zero == round(0.75 * total)
    assert round_sparsities(0.75, 2) == pytest.approx([0.5, 0.75])


def test_imp_continues_a_finished_lower_sparsity_run_as_one_trajectory(corpus, tmp_path):
    first, _ = _run(corpus, tmp_path / "a", "imp", sparsity=0.5, steps=3, imp_rounds=1)
    earlier_dir = tmp_path / "a" / "imp"
    summary, probe = _run(corpus, tmp_path / "b", "imp", sparsity=0.75, steps=3, imp_rounds=1,
                          imp_checkpoint=str(earlier_dir))
    # only the new round ran here; the earlier run's dense fine-tuning and round count in the cost
    assert len(probe.phases) == 1
    assert summary["finetunings"] == 3 and summary["finetune_steps"] == 9 and summary["reused_dense"] is True
    record = json.loads((tmp_path / "b" / "imp" / "run.json").read_text())
    names = [p["name"] for p in record["phases"]]
    assert names == ["finetune-0", "prune-1", "finetune-1", "prune-2", "finetune-2", "export"]
    assert all(p.get("reused_from") == str(earlier_dir) for p in record["phases"][:3])
    assert record["phases"][3]["sparsity"] == pytest.approx(0.75, abs=1e-3)  # round 2 goes from 0.5 to 0.75
    # the weights the earlier run pruned stay pruned; the survivors restart from their pretrained values
    from transformers import AutoModelForCTC

    earlier = prunable_parameters(AutoModelForCTC.from_pretrained(first["model"]))
    pretrained = prunable_parameters(AutoModelForCTC.from_pretrained(corpus[1]))
    start = probe.starts[0]
    for name, w in probe.phases[0][-1].items():
        assert torch.all(w[earlier[name] == 0] == 0), name
        survivors = w != 0
        assert torch.equal(start[name][survivors], pretrained[name][survivors]), name
    assert summary["sparsity_achieved"] == pytest.approx(0.75, abs=1e-3)
    assert round_sparsities(0.75, 1, start=0.5) == pytest.approx([0.75])
    assert round_sparsities(0.875, 2, start=0.5) == pytest.approx([0.75, 0.875])

    with pytest.raises(ConfigError, match=r"--imp-checkpoint .*reached sparsity 0.5; .*higher --sparsity, got 0.3"):
        _run(corpus, tmp_path / "c", "imp", sparsity=0.3, steps=3, imp_checkpoint=str(earlier_dir))
    with pytest.raises(ConfigError, match=r"--imp-checkpoint continues an IMP run and needs --method imp"):
        _run(corpus, tmp_path / "c", "omp", sparsity=0.8, steps=3, imp_checkpoint=str(earlier_dir))
    with pytest.raises(ConfigError, match=r"train settings differ \(max_steps\)"):
        _run(corpus, tmp_path / "c", "imp", sparsity=0.8, steps=4, imp_checkpoint=str(earlier_dir))


def test_parp_p_starts_from_a_mask_file(corpus, tmp_path):
    manifest, model_dir = corpus
    from transformers import AutoModelForCTC

    model = AutoModelForCTC.from_pretrained(model_dir)
    mask = Mask.random(prunable_parameters(model), 0.5, seed=3)
    path = mask.save(tmp_path / "other-language.safetensors")
    summary, probe = _run(corpus, tmp_path, "parp", sparsity=0.5, steps=2, prune_every=100, initial_mask=str(path))
    # the first step starts from the file's mask, so weights pruned by it began at zero (then may regrow)
    assert summary["method"] == "parp-p'"
    assert summary["sparsity_achieved"] == pytest.approx(0.5, abs=1e-3)


def test_exported_model_loads_without_parp_and_has_target_sparsity(corpus, tmp_path):
    summary, _ = _run(corpus, tmp_path, "mpi", sparsity=0.3, steps=2)
    from transformers import AutoModelForCTC

    model = AutoModelForCTC.from_pretrained(summary["model"])
    measured = measure_sparsity(model)
    assert measured.overall == pytest.approx(0.3, abs=1e-3)


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan"), 1.5])
def test_invalid_sparsity_is_one_clear_error(corpus, tmp_path, value):
    with pytest.raises(MaskError, match="--sparsity"):
        _run(corpus, tmp_path, "parp", sparsity=value, steps=1)


def test_initial_mask_needs_parp_and_an_existing_file(corpus, tmp_path):
    with pytest.raises(ConfigError, match="--initial-mask"):
        _run(corpus, tmp_path, "omp", steps=1, initial_mask=str(tmp_path / "nope.safetensors"))
    with pytest.raises(ConfigError, match="file not found"):
        _run(corpus, tmp_path, "parp", steps=1, initial_mask=str(tmp_path / "nope.safetensors"))
