"""The feature cache is exact: training with it gives the same losses, gradients and weights as without it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import synthetic_corpus, tiny_model_dir
from safetensors.torch import load_file

from parp.data import DataArguments
from parp.errors import ConfigError
from parp.models import ModelArguments, tiny_ctc_model
from parp.training.feature_cache import cacheable, feature_cache
from parp.training.finetune import run_finetune
from parp.training.loop import TrainConfig

CNN = dict(conv_dim=(16,) * 3, conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), hidden_size=32, intermediate_size=64,
           num_hidden_layers=2, mask_time_prob=0.3, mask_time_length=2)


def _model(arch: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    norm = {} if arch == "data2vec-audio" else {"feat_extract_norm": "layer"}
    model = tiny_ctc_model(arch, vocab_size=8, **{**CNN, **norm, **overrides})
    model.freeze_feature_encoder()
    return model.train()


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = [4000, 2500, 3100]
    values = torch.zeros(3, 4000)
    mask = torch.zeros(3, 4000, dtype=torch.long)
    for i, n in enumerate(lengths):
        values[i, :n] = torch.randn(n, generator=g)
        mask[i, :n] = 1
    labels = torch.tensor([[1, 2, 3], [4, 5, -100], [6, 7, 2]])
    return {"input_values": values, "attention_mask": mask, "labels": labels}


def _step(model, batch, seed):
    torch.manual_seed(seed)  # SpecAugment's time masks (numpy in transformers) draw the same numbers with and
    np.random.seed(seed)  # without the cache
    loss = model(**batch).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return loss.detach(), grads


@pytest.mark.parametrize("arch, bf16", [("wav2vec2", False), ("hubert", False), ("wavlm", False),
                                        ("data2vec-audio", False), ("wav2vec2", True)])
def test_losses_and_gradients_are_identical_with_the_cache(arch, bf16):
    plain = _model(arch)
    cached = copy.deepcopy(plain)
    batches = [_batch(0), _batch(1), _batch(0)]  # the third is all hits
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # --mixed-precision bf16 on the CPU
        expected = [_step(plain, b, seed) for seed, b in enumerate(batches)]
        with feature_cache(cached, 64) as cache:
            got = [_step(cached, b, seed) for seed, b in enumerate(batches)]
    assert cache is not None and (cache.misses, cache.hits) == (6, 3)
    for (loss_a, grads_a), (loss_b, grads_b) in zip(expected, got):
        assert torch.equal(loss_a, loss_b)
        assert grads_a.keys() == grads_b.keys()
        assert all(torch.equal(grads_a[n], grads_b[n]) for n in grads_a)
    assert "forward" not in vars(cached.wav2vec2.feature_extractor if arch == "wav2vec2"
                                 else cached.base_model.feature_extractor)  # the patch is undone


def test_group_norm_or_a_trainable_cnn_is_not_cached():
    group = _model("wav2vec2", feat_extract_norm="group")
    assert not cacheable(group)
    trainable = _model("wav2vec2")
    for p in trainable.wav2vec2.feature_extractor.parameters():
        p.requires_grad_(True)
    assert not cacheable(trainable)
    with feature_cache(group, 64) as cache:
        assert cache is None
    with feature_cache(_model("wav2vec2"), 0) as cache:
        assert cache is None


def test_batches_without_attention_mask_are_computed_not_cached():
    model = _model("wav2vec2")
    batch = _batch()
    del batch["attention_mask"]
    with feature_cache(model, 64) as cache:
        model(**batch)
    assert (cache.hits, cache.misses, len(cache.entries)) == (0, 0, 0)


def test_changed_cnn_weights_empty_the_cache_and_the_size_is_bounded():
    model = _model("wav2vec2")
    with torch.no_grad(), feature_cache(model, 64) as cache:
        model(**_batch(0))
        assert len(cache.entries) == 3
        model.wav2vec2.feature_extractor.conv_layers[0].conv.weight.mul_(0.5)  # e.g. a mask applied to the CNN
        model(**_batch(0))
        assert (cache.misses, len(cache.entries)) == (6, 3)
    largest = max(row.numel() * 4 for row in cache.entries.values())
    with torch.no_grad(), feature_cache(model, 1.5 * largest / 2**20) as small:
        model(**_batch(0))
        model(**_batch(1))
    assert small.misses == 6 and 1 <= len(small.entries) < 3 and small.bytes <= 1.5 * largest


def test_a_fine_tuning_with_the_cache_ends_with_the_same_weights(tmp_path):
    manifest = synthetic_corpus(tmp_path / "data", n=12)
    model_dir = tiny_model_dir(tmp_path / "model", feat_extract_norm="layer")
    weights = []
    for megabytes in (0, 64):
        run_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                     ModelArguments(model=str(model_dir)),
                     TrainConfig(output_dir=str(tmp_path / f"run{megabytes}"), max_steps=8, warmup_steps=2,
                                 eval_every=4, save_every=0, progress=False, feature_cache_mb=megabytes))
        weights.append(load_file(tmp_path / f"run{megabytes}" / "model" / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_negative_cache_size_is_one_line_naming_the_flag(tmp_path):
    from parp.training.config import validate_train_config

    with pytest.raises(ConfigError, match="--feature-cache-mb"):
        validate_train_config(TrainConfig(feature_cache_mb=-1))


def test_the_patch_is_undone_when_training_stops_with_an_error():
    model = _model("wav2vec2")
    with pytest.raises(RuntimeError, match="diverged"):
        with feature_cache(model, 64):
            model(**_batch(0))
            raise RuntimeError("diverged")
    assert "forward" not in vars(model.wav2vec2.feature_extractor)
