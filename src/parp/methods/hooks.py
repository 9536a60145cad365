"""The two pruning hooks every method is built from.

* ``FixedMaskHook``: the mask never changes; masked weights are re-zeroed after every optimizer step, so they
  stay exactly zero whatever the optimizer's momentum does (OMP's second fine-tuning, IMP, MPI, random).
* ``PARPHook``: Prune, Adjust and Re-Prune. The masked weights are zeroed but stay trainable, so they may grow
  back during the adjustment; every ``prune_every`` updates, and always before any validation or save, the
  model is re-pruned by magnitude to exactly the target sparsity.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from ..sparsity import Mask
from ..training.hooks import LoopState, TrainingHook

MaskFactory = Callable[[torch.nn.Module], Mask]


def _mask_state(mask: Mask | None, prefix: str = "mask.") -> dict[str, Any]:
    return {} if mask is None else {f"{prefix}{name}": mask[name].to(torch.uint8) for name in mask}


@torch.no_grad()
def achieved_sparsity(model: torch.nn.Module, mask: Mask | None) -> dict[str, float]:
    """Zeros actually in the masked weights now (PARP's regrown weights make it drop between re-prunes)."""
    if mask is None:
        return {}
    params = dict(model.named_parameters())
    zeros = sum(int((params[n] == 0).sum()) for n in mask)
    total = sum(params[n].numel() for n in mask)
    return {"sparsity": zeros / max(total, 1)}


def _mask_from_state(state: dict[str, Any], prefix: str = "mask.") -> Mask | None:
    tensors = {k[len(prefix):]: v.bool() for k, v in state.items() if k.startswith(prefix)}
    return Mask(tensors) if tensors else None


class FixedMaskHook(TrainingHook):
    """Keep a given mask fixed for the whole fine-tuning."""

    name = "fixed-mask"

    def __init__(self, mask: Mask):
        self.mask = mask
        self.upkeep_seconds = 0.0

    def on_train_begin(self, state: LoopState) -> None:
        self.mask.place_(state.model)  # once: a loaded or restored mask arrives on the CPU
        self.mask.apply_(state.model)

    def on_step_end(self, state: LoopState) -> None:
        t0 = time.perf_counter()
        self.mask.apply_(state.model)
        self.upkeep_seconds += time.perf_counter() - t0

    def log_values(self, state: LoopState) -> dict[str, float]:
        return achieved_sparsity(state.model, self.mask)

    def state_dict(self) -> dict[str, Any]:
        return {**_mask_state(self.mask), "upkeep_seconds": self.upkeep_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mask = _mask_from_state(state) or self.mask
        self.upkeep_seconds = state.get("upkeep_seconds", 0.0)


class PARPHook(TrainingHook):
    """Prune the starting weights (or start from ``initial_mask``: PARP-P'), adjust, re-prune periodically."""

    name = "parp"

    def __init__(self, make_mask: MaskFactory, prune_every: int, initial_mask: Mask | None = None,
                 adjusting_part: Callable[[Mask], Mask] | None = None):
        self.make_mask = make_mask
        # the part of the mask zeroed while weights may grow back (default all of it; --scope ffn: the fc1
        # side only, see parp.sparsity.structured); the final re-prune always zeroes the whole mask
        self.adjusting_part = adjusting_part or (lambda mask: mask)
        self.prune_every = prune_every
        self.mask = initial_mask
        self.start = initial_mask  # the first mask: how far the adjustment moves from it is recorded
        self.started = False
        self.upkeep_seconds = 0.0
        # per re-prune: step, IoU of the pruned sets with the mask before it and with the starting mask
        self.reprunes: list[dict[str, Any]] = []

    def _reprune(self, state: LoopState, final: bool = False) -> None:
        t0 = time.perf_counter()
        previous = self.mask
        self.mask = self.make_mask(state.model).broadcast_().place_(state.model)
        (self.mask if final else self.adjusting_part(self.mask)).apply_(state.model)
        self.upkeep_seconds += time.perf_counter() - t0
        if previous is None:
            self.start = self.mask
        elif len(self.reprunes) < 10_000:
            entry = {"step": state.step, "iou_with_previous": round(previous.iou(self.mask), 5)}
            if self.start is not None:  # None only when resumed from a checkpoint of an older parp
                entry["iou_with_start"] = round(self.start.iou(self.mask), 5)
            self.reprunes.append(entry)

    def on_train_begin(self, state: LoopState) -> None:
        if self.mask is not None:
            self.mask.place_(state.model)  # a mask from --initial-mask or a checkpoint arrives on the CPU
        if self.start is not None:
            self.start.place_(state.model)
        if self.started:  # resumed: the restored weights already carry the last re-prune
            return
        self.started = True
        if self.mask is None:
            self._reprune(state)  # step 1: prune the pretrained weights by magnitude
        else:
            self.adjusting_part(self.mask).apply_(state.model)

    def on_step_end(self, state: LoopState) -> None:
        if self.prune_every and state.step % self.prune_every == 0:
            self._reprune(state)

    def on_before_evaluate(self, state: LoopState) -> None:
        self._reprune(state)  # never evaluate or save a model below the target sparsity

    def on_train_end(self, state: LoopState) -> None:
        self._reprune(state, final=True)

    def log_values(self, state: LoopState) -> dict[str, float]:
        values = achieved_sparsity(state.model, self.mask)
        if self.reprunes:
            values["reprune_iou"] = self.reprunes[-1]["iou_with_previous"]
        return values

    def state_dict(self) -> dict[str, Any]:
        return {**_mask_state(self.mask), **_mask_state(self.start, "start."), "started": self.started,
                "upkeep_seconds": self.upkeep_seconds, "reprunes": self.reprunes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mask = _mask_from_state(state) or self.mask
        self.start = _mask_from_state(state, "start.") or self.start  # older checkpoints: --initial-mask or None
        self.started = state.get("started", False)
        self.upkeep_seconds = state.get("upkeep_seconds", 0.0)
        self.reprunes = state.get("reprunes", [])
