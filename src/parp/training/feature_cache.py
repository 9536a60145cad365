"""Run the frozen CNN feature encoder once per clip instead of once per epoch and per validation.

Fine-tuning keeps the CNN over the raw waveform frozen (``--freeze-feature-encoder``, the default), so it computes
the same features for a clip every time the clip comes back; on a CPU that CNN is a third of a training step of the
embedded encoder and half of a validation (``bench/bench_feature_cache.py``). :func:`feature_cache` remembers each
clip's features, keyed by a hash of its samples, and hands them back padded with zeros.

Exact, not approximate: only for CNNs without GroupNorm (every frame's features then depend on its own receptive
field only, so a clip's valid frames are the same alone or padded in any batch) and only for batches with an
attention mask, whose padded frames the transformer zeroes before it reads them. Only on the CPU (a GPU computes the
CNN faster than it would hash the audio), and the cache empties itself if the CNN's weights change (a pruned CNN).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

import torch


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, getattr(model, "base_model_prefix", ""), model)


def cacheable(model: torch.nn.Module) -> bool:
    """Whether the model's CNN feature encoder is frozen and frame-local (see the module docstring)."""
    cnn = getattr(_base_model(model), "feature_extractor", None)
    if not isinstance(cnn, torch.nn.Module) or not hasattr(_base_model(model), "_get_feat_extract_output_lengths"):
        return False
    params = list(cnn.parameters())
    return (bool(params) and not any(p.requires_grad for p in params)
            and not any(isinstance(m, torch.nn.GroupNorm) for m in cnn.modules()))


class FeatureCache:
    """Per-clip CNN features, least recently used evicted beyond ``max_bytes``."""

    def __init__(self, base: torch.nn.Module, cnn: torch.nn.Module, max_bytes: int):
        self.base, self.cnn, self.max_bytes = base, cnn, max_bytes
        self.compute = cnn.forward  # the CNN's own forward (a bound method), what a miss runs
        self.entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.bytes = self.hits = self.misses = 0
        self.lengths: list[int] | None = None  # valid samples per row of the coming batch (the base model's input)
        self.expected: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def note_batch(self, module, args, kwargs) -> None:
        """Forward pre-hook of the base model: remember the batch's valid lengths for the CNN call that follows."""
        values = kwargs.get("input_values", args[0] if args else None)
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        usable = isinstance(values, torch.Tensor) and values.dim() == 2 and values.device.type == "cpu"
        self.expected = values if usable and mask is not None else None
        self.lengths = mask.sum(-1).tolist() if self.expected is not None else None

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        if input_values is not self.expected or self.lengths is None:
            return self.compute(input_values)
        self.expected = None
        self._check_weights()
        autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu")
        keys = [(n, autocast, hashlib.blake2b(input_values[i, :n].numpy().tobytes(), digest_size=16).digest())
                for i, n in enumerate(self.lengths)]
        frames = [int(self.base._get_feat_extract_output_lengths(n)) for n in self.lengths]
        missing = [i for i, key in enumerate(keys) if key not in self.entries]
        if missing:  # one batched call over the rows not seen yet: their valid frames as if alone
            computed = self.compute(input_values[missing])
            for row, i in zip(computed, missing):
                self.entries[keys[i]] = row[:, : frames[i]].clone()
                self.bytes += self.entries[keys[i]].numel() * computed.element_size()
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        rows = [self.entries[key] for key in keys]
        for key in keys:
            self.entries.move_to_end(key)
        self._evict()  # after the batch is assembled: its own rows are the most recently used
        total = int(self.base._get_feat_extract_output_lengths(input_values.shape[-1]))
        out = rows[0].new_zeros(len(rows), rows[0].shape[0], total)
        for i, row in enumerate(rows):
            out[i, :, : row.shape[-1]] = row
        return out

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()

    def _check_weights(self) -> None:
        """Empty the cache when the CNN's weights changed (e.g. a mask applied to a pruned CNN)."""
        with torch.no_grad():
            weights = torch.stack([p.detach().float().sum() for p in self.cnn.parameters()])
        if self.weights is not None and not torch.equal(weights, self.weights):
            self.entries.clear()
            self.bytes = 0
        self.weights = weights


@contextmanager
def feature_cache(model: torch.nn.Module, max_megabytes: float) -> Iterator[FeatureCache | None]:
    """Within the block, ``model``'s frozen CNN runs once per clip (``None``: not cacheable, or off at 0 MB)."""
    if max_megabytes <= 0 or not cacheable(model):
        yield None
        return
    base = _base_model(model)
    cache = FeatureCache(base, base.feature_extractor, int(max_megabytes * 2**20))
    hook = base.register_forward_pre_hook(cache.note_batch, with_kwargs=True)
    base.feature_extractor.forward = cache.forward  # an instance attribute: the module and its weights unchanged
    try:
        yield cache
    finally:
        hook.remove()
        del base.feature_extractor.forward
