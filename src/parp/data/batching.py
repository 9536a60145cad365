"""Batches of similar-length utterances under an audio-seconds budget, and the CTC padding collator.

Padding is wasted compute: sorting whole shuffled chunks by length keeps batches tight while the chunk
shuffle and batch-order shuffle keep epochs random. The budget is on padded seconds (batch size x longest
item), which is what bounds memory.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


class LengthGroupedBatchSampler:
    """Yields lists of dataset indices; each batch's padded length x size stays within ``max_batch_seconds``.

    A single utterance longer than the budget forms its own batch (never dropped). With ``shuffle`` the
    batches depend only on ``seed`` and the epoch set by :meth:`set_epoch`; without it they are in
    ascending length order (for evaluation).
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size_multiplier: int = 50,
    ):
        if max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be positive, got {max_batch_seconds}")
        self.durations = np.asarray(durations, dtype=np.float64)
        self.max_batch_seconds = float(max_batch_seconds)
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_size_multiplier = bucket_size_multiplier
        self.epoch = 0
        self._batches: list[list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self._batches = None

    def _pack(self, ordered: np.ndarray) -> list[list[int]]:
        """Greedy packing of indices given in length order into batches under the padded-seconds budget."""
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0.0
        for index in ordered:
            duration = self.durations[index]
            new_longest = max(longest, duration)
            if batch and new_longest * (len(batch) + 1) > self.max_batch_seconds:
                batches.append(batch)
                batch, new_longest = [], duration
            batch.append(int(index))
            longest = new_longest
        if batch:
            batches.append(batch)
        return batches

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch (computed once per epoch)."""
        if self._batches is not None:
            return self._batches
        n = len(self.durations)
        if n == 0:
            self._batches = []
            return self._batches
        if not self.shuffle:
            self._batches = self._pack(np.argsort(self.durations, kind="stable"))
            return self._batches
        rng = np.random.default_rng([self.seed, self.epoch])
        typical = max(1, int(self.max_batch_seconds // max(float(np.median(self.durations)), 1e-6)))
        chunk_size = max(1, typical * self.bucket_size_multiplier)
        permutation = rng.permutation(n)
        batches = []
        for start in range(0, n, chunk_size):
            chunk = permutation[start : start + chunk_size]
            batches.extend(self._pack(chunk[np.argsort(-self.durations[chunk], kind="stable")]))
        order = rng.permutation(len(batches))
        self._batches = [batches[i] for i in order]
        return self._batches

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())


class CTCCollator:
    """Pads a list of SpeechDataset items into tensors for ``*ForCTC`` models.

    ``input_values`` are padded with 0 and get an ``attention_mask``; ``labels`` are padded with -100, which
    transformers' CTC loss ignores. ``pad_token_id`` is the CTC blank: a label equal to it would be silently
    unlearnable, so it is rejected. The batch also carries ``index`` (dataset positions) for per-utterance
    results: pop it before ``model(**batch)``. Items that failed to decode (``"failed"``) are left out and
    listed as ``batch["failed"]`` = [(path, reason)]; a batch of only such items has no tensors at all.
    """

    def __init__(self, pad_token_id: int = 0, label_padding: int = -100):
        self.pad_token_id = pad_token_id
        self.label_padding = label_padding

    def __call__(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        if not items:
            raise ValueError("cannot collate an empty batch")
        failed = [(item["path"], item["failed"]) for item in items if "failed" in item]
        if failed:
            items = [item for item in items if "failed" not in item]
            if not items:
                return {"failed": failed}
        lengths = [len(item["input_values"]) for item in items]
        input_values = torch.zeros(len(items), max(lengths), dtype=torch.float32)
        attention_mask = torch.zeros(len(items), max(lengths), dtype=torch.long)
        label_lengths = [len(item["labels"]) for item in items]
        labels = torch.full((len(items), max(label_lengths)), self.label_padding, dtype=torch.long)
        for row, item in enumerate(items):
            input_values[row, : lengths[row]] = torch.as_tensor(np.asarray(item["input_values"], dtype=np.float32))
            attention_mask[row, : lengths[row]] = 1
            if label_lengths[row]:
                item_labels = torch.as_tensor(item["labels"], dtype=torch.long)
                if (item_labels == self.pad_token_id).any():
                    raise ValueError(f"item {item.get('index', row)}: labels contain the CTC blank id {self.pad_token_id}")
                labels[row, : label_lengths[row]] = item_labels
        batch = {"input_values": input_values, "attention_mask": attention_mask, "labels": labels}
        if all("index" in item for item in items):
            batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.long)
        if failed:
            batch["failed"] = failed
        return batch
