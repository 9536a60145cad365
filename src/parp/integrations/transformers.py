"""PARP, MPI and a fixed mask (PARP-P') as a ``transformers.TrainerCallback``, for a training script people already
have (the transformers CTC recipe, a Whisper ``Seq2SeqTrainer`` notebook, a lab's fork)::

    from parp.integrations.transformers import PruningCallback
    trainer = Trainer(model=model, args=args, ..., callbacks=[PruningCallback("parp", sparsity=0.5, prune_every=50)])

The callback drives the very hooks ``parp prune`` runs (``parp.methods.hooks.PARPHook`` and ``FixedMaskHook``) over
the same targets and mask recipes (``parp.sparsity.scopes``), so a run has the same exact sparsity as the CLI:

- ``"parp"``: prune the starting weights at train begin (or start from ``mask``: PARP-P'), let the zeros train,
  re-prune every ``prune_every`` optimizer steps, before every save and evaluation, and once more at train end;
- ``"mpi"``: prune the starting weights at train begin, keep the mask fixed; ``"fixed"``: keep ``mask`` fixed;
  ``"random"``: a random mask of the target sparsity, fixed.

OMP and IMP need two fine-tunings: :func:`prune_now` and :func:`rewind` are the steps between them (README).

Beside every Trainer checkpoint the callback writes ``parp_mask.safetensors`` (the mask; PARP's starting mask in
``parp_start_mask.safetensors``; its state in the header, no pickle). On ``resume_from_checkpoint`` it reads them
back from ``<output_dir>/checkpoint-<step>``, the folder Trainer resumes from (``resume_from=`` names another).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import torch
from transformers import TrainerCallback

from ..errors import MaskError
from ..methods.rewind import rewind as base_rewind
from ..methods.rewind import snapshot
from ..methods.hooks import FixedMaskHook, PARPHook
from ..sparsity import Mask, validate_sparsity
from ..sparsity.scopes import sparsifier
from ..training.hooks import LoopState

MASK_FILE = "parp_mask.safetensors"
START_FILE = "parp_start_mask.safetensors"
METHODS = ("parp", "mpi", "fixed", "random")


class PruningCallback(TrainerCallback):
    """Prune a model inside ``transformers.Trainer`` with parp's mask engine (see the module docstring).

    ``targets``: ``"encoder"`` (default: attention projections and feed-forward linears of every encoder layer, any
    CTC family; Whisper's encoder), ``"decoder"`` (Whisper's decoder layers, self- and cross-attention),
    ``"layers"`` (both), another ``parp.sparsity.PRESETS`` name or parameter-name regexes. ``scope``: ``"global"``,
    ``"layer"``, ``"ffn"`` (whole feed-forward neurons), ``"heads"`` (whole attention heads) or ``"N:M"``
    (``parp.sparsity.scopes``). ``mask``: a :class:`Mask` or a mask file
    (``"fixed"``; with ``"parp"``, PARP-P''s start).
    """

    def __init__(self, method: str = "parp", sparsity: float = 0.5, prune_every: int = 50, scope: str = "global",
                 targets="encoder", mask: Mask | str | Path | None = None, seed: int = 0,
                 include: Iterable[str] = (), exclude: Iterable[str] = (), resume_from: str | Path | None = None):
        if method not in METHODS:
            raise MaskError(f"PruningCallback: method must be one of {', '.join(METHODS)}, got {method!r}")
        self.sparsifier = sparsifier(scope)
        if method == "fixed" and mask is None:
            raise MaskError("PruningCallback: method 'fixed' needs mask= (a Mask or a mask file)")
        if prune_every < 0:
            raise MaskError(f"PruningCallback: prune_every must be >= 0, got {prune_every}")
        self.method, self.scope, self.targets, self.seed = method, scope, targets, seed
        self.sparsity = sparsity if self.sparsifier.sets_own_sparsity else validate_sparsity(sparsity)
        self.prune_every = prune_every
        self.include, self.exclude = list(include), list(exclude)
        self.given_mask = Mask.load(mask) if isinstance(mask, (str, Path)) else mask
        self.resume_from = Path(resume_from) if resume_from else None
        self.hook: PARPHook | FixedMaskHook | None = None

    # ------------------------------------------------------------------ masks
    def parameters(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        """The parameters this callback prunes in ``model``."""
        return self.sparsifier.targets(model, targets=self.targets, include=self.include, exclude=self.exclude)

    def magnitude_mask(self, model: torch.nn.Module) -> Mask:
        with torch.no_grad():
            return self.sparsifier.update_mask(self.parameters(model), self.sparsity)

    @property
    def mask(self) -> Mask | None:
        """The current mask (None before training starts)."""
        return None if self.hook is None else self.hook.mask

    def _new_hook(self, model: torch.nn.Module):
        if self.method == "parp":
            return PARPHook(self.magnitude_mask, self.prune_every, self.given_mask, self.sparsifier.adjusting_part)
        if self.method == "mpi":
            return FixedMaskHook(self.magnitude_mask(model))
        if self.method == "random":
            return FixedMaskHook(self.sparsifier.random_mask(self.parameters(model), self.sparsity, self.seed))
        self.given_mask.check_compatible(model)
        return FixedMaskHook(self.given_mask)

    @staticmethod
    def _loop_state(model, state) -> LoopState:
        return LoopState(model=model, accelerator=None, config=None, step=state.global_step)

    # --------------------------------------------------------------- callbacks
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.hook = self._new_hook(model)
        if state.global_step > 0:  # resumed: Trainer has restored the weights; restore the mask beside them
            self._restore(self.resume_from or Path(args.output_dir) / f"checkpoint-{state.global_step}")
        self.hook.on_train_begin(self._loop_state(model, state))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        loop = self._loop_state(model, state)
        self.hook.on_step_end(loop)
        self._before_save_or_evaluate(loop, control)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # save / eval strategy "epoch"
        self._before_save_or_evaluate(self._loop_state(model, state), control)

    def _before_save_or_evaluate(self, loop: LoopState, control) -> None:
        """Trainer's flow callback (first in the list) has just decided; never evaluate or save below the target."""
        if isinstance(self.hook, PARPHook) and (control.should_save or control.should_evaluate):
            self.hook.on_before_evaluate(loop)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.hook.on_train_end(self._loop_state(model, state))

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.hook is not None:
            self.save(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if logs is not None and self.hook is not None and model is not None:
            logs.update({f"parp/{k}": v for k, v in self.hook.log_values(self._loop_state(model, state)).items()})

    # ------------------------------------------------------------ checkpoints
    def save(self, folder: str | Path) -> Path:
        """Write the mask (and PARP's start mask and state) into ``folder``: safetensors, state in the header."""
        folder = Path(folder)
        state = {k: v for k, v in self.hook.state_dict().items() if not isinstance(v, torch.Tensor)}
        path = self.hook.mask.save(folder / MASK_FILE, {"parp_callback": json.dumps(
            {"method": self.method, "sparsity": self.sparsity, "scope": self.scope, "state": state})})
        start = getattr(self.hook, "start", None)
        if start is not None:
            start.save(folder / START_FILE)
        return path

    def _restore(self, folder: Path) -> None:
        path = folder / MASK_FILE
        if not path.is_file():
            raise MaskError(f"{path}: no parp mask beside the checkpoint this run resumes from "
                            "(pass PruningCallback(resume_from=FOLDER) if it lies elsewhere)")
        mask = Mask.load(path)
        saved = json.loads(mask.metadata.pop("parp_callback", "{}"))
        if saved.get("method") not in (None, self.method):
            raise MaskError(f"{path}: written by PruningCallback({saved['method']!r}), resumed with {self.method!r}")
        state = dict(saved.get("state", {}))
        state.update({f"mask.{n}": k for n, k in mask.masks.items()})
        if (folder / START_FILE).is_file():
            state.update({f"start.{n}": k for n, k in Mask.load(folder / START_FILE).masks.items()})
        self.hook.load_state_dict(state)
        if isinstance(self.hook, PARPHook):
            self.hook.mask = Mask(self.hook.mask.masks, mask.metadata)  # keeps --scope ffn's block names


def prune_now(model: torch.nn.Module, sparsity: float, scope: str = "global", targets="encoder",
              include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Mask:
    """Magnitude-prune ``model`` in place now and return the mask: OMP's and IMP's step between fine-tunings."""
    chosen = sparsifier(scope)
    with torch.no_grad():
        mask = chosen.update_mask(chosen.targets(model, targets=targets, include=include, exclude=exclude), sparsity)
    mask.apply_(model)
    return mask


@torch.no_grad()
def rewind(model: torch.nn.Module, pretrained: torch.nn.Module | dict, mask: Mask) -> torch.nn.Module:
    """IMP's rewind, as ``parp prune --method imp`` does it: every weight back to ``pretrained`` (a model or its
    ``parp.methods.rewind.snapshot``, taken before the first fine-tuning), then the mask's zeros."""
    base_rewind(model, snapshot(pretrained) if isinstance(pretrained, torch.nn.Module) else pretrained)
    mask.apply_(model)
    return model
