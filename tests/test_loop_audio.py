"""Throughput bookkeeping without host syncs: audio seconds are summed on the device and read once per window."""

from __future__ import annotations

import torch
from helpers import synthetic_corpus, tiny_model_dir

from parp.data import DataArguments
from parp.data.batching import LengthGroupedBatchSampler
from parp.models import ModelArguments
from parp.training.finetune import prepare_finetune
from parp.training.loop import TrainConfig, _audio_seconds, train


def test_audio_seconds_stay_a_device_tensor():
    batch = {"attention_mask": torch.ones(2, 8000, dtype=torch.long, device="meta")}
    seconds = _audio_seconds(batch, object())
    assert isinstance(seconds, torch.Tensor) and seconds.device.type == "meta"  # no float() read-back


def test_one_epoch_counts_every_utterance_once(tmp_path):
    manifest = synthetic_corpus(tmp_path / "data", n=12)
    setup = prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                             ModelArguments(model=str(tiny_model_dir(tmp_path / "model")), mask_time_prob=0.0),
                             progress=False)
    batches = len(LengthGroupedBatchSampler(setup.train_set.durations, 3.0, shuffle=True, seed=0))
    # log and save windows that do not line up with the end: every partial window must still be counted
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=batches, max_batch_seconds=3.0, log_every=2,
                         save_every=3, warmup_steps=0, eval_every=0, progress=False)
    result = train(setup.new_model(), setup.train_set, None, config, setup.objective)
    samples = sum(len(setup.train_set[i]["input_values"]) for i in range(len(setup.train_set)))
    assert result.steps == batches  # the last update consumes the epoch's last batch
    assert abs(result.train_audio_seconds - samples / 16000) < 1e-3
