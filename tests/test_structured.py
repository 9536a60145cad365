"""--scope ffn: whole feed-forward neurons, the same count per layer, exported with the neurons removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from parp.errors import MaskError
from parp.export import compact_ffn_, save_compact_model, save_pruned_model
from parp.models import tiny_ctc_model
from parp.sparsity import Mask, magnitude_mask
from parp.sparsity.structured import (ffn_blocks, ffn_mask, ffn_parameters, kept_neurons, neuron_scores, random_ffn_mask,
                                     silencing_part)


def _model(arch="wav2vec2", **overrides):
    model = tiny_ctc_model(arch, vocab_size=12, seed=0, **overrides).eval()
    with torch.no_grad():  # non-zero biases, so a forgotten bias would change the outputs
        for name, p in model.named_parameters():
            if name.endswith("intermediate_dense.bias"):
                p.normal_(0, 0.5)
    return model


def test_ffn_parameters_are_fc1_weight_and_bias_and_fc2_weight_of_every_layer():
    model = _model()
    names = list(ffn_parameters(model))
    assert len(names) == 3 * model.config.num_hidden_layers
    assert all("feed_forward" in n for n in names)
    assert not any(n.endswith("output_dense.bias") for n in names)


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.9])
def test_ffn_mask_prunes_whole_lowest_norm_neurons_same_count_per_layer(sparsity):
    model = _model()
    params = ffn_parameters(model)
    mask = ffn_mask(params, sparsity)
    width = model.config.intermediate_size
    kept = kept_neurons(mask)
    assert kept is not None and len(kept) == model.config.num_hidden_layers
    for block in ffn_blocks(params):
        keep = mask[block.fc1_weight].all(1)
        assert int((~keep).sum()) == round(sparsity * width)
        # whole neurons: fc1 row, its bias entry and fc2 column share one fate
        assert torch.equal(mask[block.fc1_weight].any(1), keep)
        assert torch.equal(mask[block.fc1_bias], keep)
        assert torch.equal(mask[block.fc2_weight].all(0), keep) and torch.equal(mask[block.fc2_weight].any(0), keep)
        norms = neuron_scores(params, block)
        assert norms[~keep].max() <= norms[keep].min()  # the documented norm ranks them
    assert mask.sparsity() == pytest.approx(round(sparsity * width) / width)


def test_ffn_score_is_the_norm_of_the_neurons_rank_one_path():
    model = _model()
    params = ffn_parameters(model)
    block = ffn_blocks(params)[0]
    j = 5
    fc1 = torch.cat([params[block.fc1_weight][j], params[block.fc1_bias][j:j + 1]])
    expected = torch.outer(params[block.fc2_weight][:, j], fc1).norm()  # Frobenius norm of fc2[:, j] x (fc1, b1)
    assert float(neuron_scores(params, block)[j]) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_random_ffn_mask_is_structured_seeded_and_unlike_magnitude():
    params = ffn_parameters(_model())
    a, b = random_ffn_mask(params, 0.5, seed=1), random_ffn_mask(params, 0.5, seed=1)
    assert a == b and kept_neurons(a) is not None
    assert a != ffn_mask(params, 0.5) and a != random_ffn_mask(params, 0.5, seed=2)


def test_silencing_part_zeroes_the_fc1_side_which_removes_the_neuron_exactly_and_leaves_a_gradient_path():
    model = _model()
    mask = ffn_mask(ffn_parameters(model), 0.5)
    part = silencing_part(mask)
    assert all("intermediate_dense" in n for n in part) and len(part) == 2 * model.config.num_hidden_layers
    x = torch.randn(1, 4000)
    part.apply_(model)
    silenced = model(x).logits
    loss = silenced.square().sum()
    loss.backward()
    with torch.no_grad():
        block = ffn_blocks(ffn_parameters(model))[0]
        w1 = dict(model.named_parameters())[block.fc1_weight]
        pruned_rows = ~mask[block.fc1_weight].all(1)
        assert w1.grad[pruned_rows].abs().sum() > 0  # the silenced rows can grow back
        mask.apply_(model)
        torch.testing.assert_close(model(x).logits, silenced, rtol=0, atol=0)  # fc2 columns add nothing more


def test_unstructured_masks_are_not_taken_for_neurons():
    model = _model()
    assert kept_neurons(magnitude_mask(model, 0.5)) is None
    mask = ffn_mask(ffn_parameters(model), 0.5)
    name = next(n for n in mask if n.endswith("intermediate_dense.weight"))
    broken = Mask({**mask.masks, name: mask[name].clone()})
    row = int(broken[name].all(1).nonzero()[0])
    broken.masks[name][row, 0] = False  # one weight of a kept neuron pruned
    assert kept_neurons(broken) is None
    with pytest.raises(MaskError, match="whole feed-forward neurons"):
        compact_ffn_(model, broken)


def test_removing_every_neuron_is_refused():
    with pytest.raises(MaskError, match="all 64 neurons"):
        ffn_mask(ffn_parameters(_model()), 0.999)


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_compact_model_computes_what_the_masked_model_computes(arch):
    model = _model(arch)
    mask = ffn_mask(ffn_parameters(model), 0.5)
    mask.apply_(model)
    x = torch.randn(2, 4000)
    with torch.no_grad():
        expected = model(x).logits
        compact = compact_ffn_(model, mask)
        got = compact(x).logits
    assert compact.config.intermediate_size == 32
    assert all(m.intermediate_dense.out_features == 32 and m.output_dense.in_features == 32
               for n, m in compact.named_modules() if n.endswith("feed_forward"))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_exported_compact_folder_loads_in_plain_transformers_with_the_same_outputs(tmp_path):
    model = _model()
    mask = ffn_mask(ffn_parameters(model), 0.5)
    save_pruned_model(model, mask, tmp_path / "masked")  # applies the mask in place
    out = save_compact_model(model, mask, tmp_path / "compact")
    assert json.loads((out / "config.json").read_text())["intermediate_size"] == 32
    assert model.config.intermediate_size == 64  # the caller's model is untouched
    x = torch.randn(1, 4000)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = model(x).logits
    code = (
        "import sys, torch, transformers\n"
        f"m = transformers.AutoModelForCTC.from_pretrained({str(out)!r}).eval()\n"
        "assert 'parp' not in sys.modules\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        "with torch.no_grad():\n"
        f"    torch.save(m(x).logits, {str(tmp_path / 'y.pt')!r})\n"
        "print(m.wav2vec2.encoder.layers[0].feed_forward.intermediate_dense.weight.shape[0])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-1] == "32"
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=1e-5, atol=1e-5)
