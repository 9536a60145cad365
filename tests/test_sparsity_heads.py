"""--scope heads: whole attention heads, the same number per block, by the norm of their weights; PARP with it runs
and ends at exactly the target (and the scope was added as one file plus one registry line)."""

from __future__ import annotations

import pytest
import torch
from helpers import run_tiny_prune, synthetic_corpus, tiny_model_dir

from parp.errors import ConfigError, MaskError
from parp.methods import PruneArguments
from parp.methods.arguments import validate_prune_arguments
from parp.models import tiny_ctc_model
from parp.sparsity.scopes import SCOPES, sparsifier
from parp.sparsity.scopes.heads import AttentionHeads, head_blocks
from parp.training.hooks import TrainingHook

HEADS = 4


def _model(arch="wav2vec2"):
    torch.manual_seed(0)
    return tiny_ctc_model(arch, vocab_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=HEADS)


def _pruned_heads(mask, block) -> list[int]:
    """Heads of ``block`` the mask prunes, checking the mask is constant within every head (rows of q/k/v,
    columns of out)."""
    pruned = []
    for h in range(block.heads):
        parts = [mask[n].reshape(block.heads, -1)[h] for n in block.inputs]
        out = mask[block.out]
        parts.append(out.reshape(out.shape[0], block.heads, -1)[:, h])
        values = torch.cat([p.reshape(-1) for p in parts]).unique()
        assert values.numel() == 1, f"head {h} of {block.q} is partly pruned"
        if not bool(values[0]):
            pruned.append(h)
    return pruned


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer"])
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_heads_mask_prunes_an_exact_fraction_of_whole_heads_in_every_block(arch, sparsity):
    model = _model(arch)
    chosen = sparsifier("heads")
    params = chosen.targets(model)
    blocks = head_blocks(model)
    assert len(blocks) == 2 and all(b.heads == HEADS for b in blocks)
    for make in (lambda: chosen.update_mask(params, sparsity), lambda: chosen.random_mask(params, sparsity, seed=3)):
        mask = make()
        assert set(mask) == set(params)
        for block in blocks:
            assert len(_pruned_heads(mask, block)) == round(sparsity * HEADS)
        assert mask.sparsity() == pytest.approx(round(sparsity * HEADS) / HEADS)


def test_heads_are_ranked_by_the_norm_of_their_weights():
    model = _model()
    chosen = sparsifier("heads")
    params = chosen.targets(model)
    block = head_blocks(model)[0]
    with torch.no_grad():  # head 1 the strongest, head 2 silent: 2 of 4 pruned must keep 1 and drop 2
        for name in block.inputs:
            params[name].reshape(HEADS, -1)[1] *= 100
            params[name].reshape(HEADS, -1)[2] = 0
        out = params[block.out]
        out.reshape(out.shape[0], HEADS, -1)[:, 2] = 0
    pruned = _pruned_heads(chosen.update_mask(params, 0.5), block)
    assert 2 in pruned and 1 not in pruned


def test_random_heads_depend_on_the_seed_and_parp_silences_only_the_output_columns():
    model = _model()
    chosen = sparsifier("heads")
    params = chosen.targets(model)
    blocks = head_blocks(model)
    draws = {tuple(h for b in blocks for h in _pruned_heads(chosen.random_mask(params, 0.5, seed=s), b))
             for s in range(8)}
    assert len(draws) > 1
    part = chosen.adjusting_part(chosen.update_mask(params, 0.5))
    assert set(part) == {b.out for b in blocks}


def test_heads_refuses_weight_scope_options_and_unknown_scopes_name_it():
    assert SCOPES["heads"] is AttentionHeads
    with pytest.raises(ConfigError, match="--scope heads prunes whole attention heads.*--include-bias"):
        validate_prune_arguments(PruneArguments(scope="heads", include_bias=True))
    with pytest.raises(ConfigError, match="--scope must be global, layer, ffn, heads or N:M"):
        validate_prune_arguments(PruneArguments(scope="rows"))
    with pytest.raises(MaskError, match="would remove all 4 heads"):
        chosen = sparsifier("heads")
        chosen.update_mask(chosen.targets(_model()), 0.9)


class HeadProbe(TrainingHook):
    """Per step: the number of heads whose output columns are all zero, per block."""

    name = "head-probe"

    def __init__(self):
        self.silent: list[list[int]] = []

    def on_train_begin(self, state):
        self.on_step_end(state)

    def on_step_end(self, state):
        counts = []
        for block in head_blocks(state.model):
            out = state.model.get_parameter(block.out)
            counts.append(int((out.reshape(out.shape[0], block.heads, -1) == 0).all(2).all(0).sum()))
        self.silent.append(counts)


def test_parp_with_heads_runs_on_the_tiny_model_and_ends_at_exactly_the_target(tmp_path):
    corpus = synthetic_corpus(tmp_path / "corpus", n=16), tiny_model_dir(tmp_path / "model",
                                                                         num_attention_heads=HEADS)
    probe = HeadProbe()
    summary = run_tiny_prune(corpus, tmp_path, "parp", probe, 0.5, 6, scope="heads", prune_every=3)
    assert probe.silent[0] == [HEADS // 2, HEADS // 2]  # the pretrained weights pruned: 2 heads of 4 per block
    assert probe.silent[3] == [HEADS // 2, HEADS // 2]  # re-pruned at step 3
    assert any(sum(s) < HEADS for s in probe.silent[1:3]), "silenced heads must be free to grow back"
    assert summary["sparsity_achieved"] == pytest.approx(0.5)  # the final re-prune zeroes whole heads
    assert summary["mask_sparsity"] == pytest.approx(0.5)


def test_the_trainer_callback_takes_the_heads_scope_from_the_same_registry():
    from parp.integrations.transformers import PruningCallback, prune_now

    model = _model()
    mask = PruningCallback("mpi", sparsity=0.5, scope="heads").magnitude_mask(model)
    assert [len(_pruned_heads(mask, b)) for b in head_blocks(model)] == [HEADS // 2, HEADS // 2]
    assert prune_now(model, 0.5, scope="heads") == mask
