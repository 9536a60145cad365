"""Non-finite loss or weights stop the run with one line naming the step, before a bad checkpoint is written.

A NaN loss poisons every later update, so a run that "completes" with a NaN history would be a lie. The loss is
watched on the device (no host sync per step); the check itself runs where the loop already syncs (logging,
checkpoints, the end), and always before a checkpoint is saved, so the last checkpoint on disk is a good one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import TrainingError


def first_non_finite_weight(model: torch.nn.Module) -> str | None:
    """Name of the first parameter holding NaN or inf, or None (one host sync for all of them)."""
    params = [(name, p) for name, p in model.named_parameters()]
    if not params:
        return None
    finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in params])
    if bool(finite.all()):
        return None
    return next(name for (name, _), ok in zip(params, finite.tolist()) if not ok)


class DivergenceWatch:
    """Remembers the first update whose loss was not finite; ``check`` raises if there was one."""

    def __init__(self, device: torch.device, output_dir: Path):
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.output_dir = output_dir

    def observe(self, loss: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss.detach().float())
        self.first_bad = torch.where((self.first_bad < 0) & bad, torch.full_like(self.first_bad, step),
                                     self.first_bad)

    def _kept(self) -> str:
        pointer = self.output_dir / "checkpoints" / "latest"
        if pointer.exists():
            return f"the last good checkpoint ({pointer.read_text().strip()}) is kept and resumable"
        return "no checkpoint was written"

    def check(self, model: torch.nn.Module, step: int, accelerator=None) -> None:
        first_bad = accelerator.reduce(self.first_bad, "max") if accelerator is not None else self.first_bad
        bad_step = int(first_bad)
        if bad_step >= 0:
            raise TrainingError(f"the training loss is not finite (NaN or inf) at step {bad_step}; {self._kept()}; "
                                f"check the data or lower --learning-rate (with --overwrite-output-dir)")
        check_weights(model, f"at step {step}", self._kept())


def check_weights(model: torch.nn.Module, when: str, kept: str = "") -> None:
    name = first_non_finite_weight(model)
    if name is not None:
        raise TrainingError(f"the model weights are not finite (NaN or inf) {when}: {name}"
                            + (f"; {kept}" if kept else ""))
