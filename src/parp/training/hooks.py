"""Hook points of the one training loop. Pruning methods are hooks; none of them copies the loop.

The loop calls, in order::

    on_train_begin(state)                      once, after resume, before the first step
    on_step_end(state)                         after every optimizer step (state.step already incremented)
    on_before_evaluate(state)                  before every validation and every model save (PARP re-prunes here)
    on_train_end(state)                        once, before the final model is saved and evaluated
    log_values(state) -> dict                  at each logging step: numbers for the live curves

A hook that keeps state across a kill/resume returns it from ``state_dict`` (tensors and JSON-able values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator

    from .config import TrainConfig


@dataclass
class LoopState:
    """What a hook may read (and, for ``model``, modify in place)."""

    model: "torch.nn.Module"  # the unwrapped model
    accelerator: "Accelerator"
    config: "TrainConfig"
    step: int = 0
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    optimizer: Any = None


class TrainingHook:
    """Base class with no-op hook points."""

    name = "hook"

    def on_train_begin(self, state: LoopState) -> None:
        pass

    def on_step_end(self, state: LoopState) -> None:
        pass

    def on_before_evaluate(self, state: LoopState) -> None:
        pass

    def on_train_end(self, state: LoopState) -> None:
        pass

    def log_values(self, state: LoopState) -> dict[str, float]:
        """Numbers for the live curves at each logging step (``--report-to``), e.g. achieved sparsity."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
