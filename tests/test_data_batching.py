"""Length-grouped batching, CTC collation and train/valid splits."""

import numpy as np
import pytest
import torch

from parp.data import CTCCollator, LengthGroupedBatchSampler, Utterance, split_train_valid
from parp.errors import ConfigError


@pytest.fixture
def durations():
    rng = np.random.default_rng(1)
    values = rng.uniform(0.5, 10.0, size=997)
    values[[5, 400]] = [45.0, 31.0]  # longer than the cap: must become singleton batches
    return values


def test_batches_respect_cap_and_cover_every_index_once(durations):
    sampler = LengthGroupedBatchSampler(durations, max_batch_seconds=30.0, seed=3, bucket_size_multiplier=5)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(durations)))
        for batch in batches:
            padded = len(batch) * max(durations[i] for i in batch)
            assert padded <= 30.0 or len(batch) == 1
        assert [5] in batches and [400] in batches


def test_batches_are_deterministic_per_seed_and_epoch(durations):
    def batches(seed, epoch):
        sampler = LengthGroupedBatchSampler(durations, 30.0, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert batches(0, 0) == batches(0, 0)
    assert batches(0, 0) != batches(0, 1)
    assert batches(0, 0) != batches(1, 0)


def test_length_grouping_reduces_padding(durations):
    grouped = LengthGroupedBatchSampler(durations, 30.0, seed=0)
    waste = sum(len(b) * max(durations[b]) - durations[b].sum() for b in map(np.array, grouped))
    assert waste < 0.15 * durations.sum()
    ordered = list(LengthGroupedBatchSampler(durations, 30.0, shuffle=False))
    assert [i for b in ordered for i in b] == list(np.argsort(durations, kind="stable"))


def test_ctc_collator_pads_and_masks():
    items = [
        {"input_values": np.ones(5, dtype=np.float32), "labels": [3, 4, 5], "index": 7},
        {"input_values": np.full(3, 2.0, dtype=np.float32), "labels": [6], "index": 2},
    ]
    batch = CTCCollator(pad_token_id=0)(items)
    assert batch["input_values"].dtype == torch.float32
    assert batch["input_values"][1].tolist() == [2.0, 2.0, 2.0, 0.0, 0.0]
    assert batch["attention_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[3, 4, 5], [6, -100, -100]]
    assert batch["index"].tolist() == [7, 2]
    with pytest.raises(ValueError, match="CTC blank"):
        CTCCollator(pad_token_id=0)([{"input_values": np.ones(2), "labels": [0, 3]}])


def test_split_is_deterministic_disjoint_and_order_independent():
    utterances = [Utterance(f"u{i:03d}.wav", "t", speaker=f"s{i % 4}") for i in range(200)]
    train, valid = split_train_valid(utterances, 0.1, seed=0)
    assert len(valid) == 20 and len(train) == 180
    assert {u.path for u in train}.isdisjoint(u.path for u in valid)
    _, valid_reversed = split_train_valid(utterances[::-1], 0.1, seed=0)
    assert {u.path for u in valid_reversed} == {u.path for u in valid}
    _, valid_other_seed = split_train_valid(utterances, 0.1, seed=1)
    assert {u.path for u in valid_other_seed} != {u.path for u in valid}
    train_s, valid_s = split_train_valid(utterances, 0.2, seed=0, by_speaker=True)
    assert {u.speaker for u in train_s}.isdisjoint(u.speaker for u in valid_s) and len(valid_s) >= 40
    with pytest.raises(ConfigError):
        split_train_valid(utterances, 1.5)
