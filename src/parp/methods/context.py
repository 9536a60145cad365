"""What a method runs on: :class:`MethodContext` runs fine-tuning phases on the one loop, builds masks with the
run's sparsifier (``parp.sparsity.scopes``) and records every phase's cost.

A method is a function ``run(ctx) -> (model, mask)`` in its own short module; it composes fine-tuning phases
(``ctx.finetune``) with masks (``ctx.magnitude_mask`` ...).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch

from ..records import Phase, Run, RunRecord
from ..sparsity import Mask
from ..sparsity.scopes import sparsifier
from ..training.finetune import FinetuneSetup, phase_facts, with_output_dir
from ..training.hooks import TrainingHook
from ..training.config import TrainConfig
from ..training.loop import TrainResult, train
from .arguments import PruneArguments
from .compatibility import completed_run, load_weights

class MethodContext:
    """Runs fine-tuning phases for a method and records their cost."""

    def __init__(self, setup: FinetuneSetup, config: TrainConfig, args: PruneArguments, record: RunRecord,
                 extra_hooks: Sequence[TrainingHook] = ()):
        self.setup, self.config, self.args, self.record = setup, config, args, record
        self.sparsifier = sparsifier(args.scope, "--scope")  # what --scope prunes and how; one per run
        self.extra_hooks = list(extra_hooks)  # run after the method's own hooks in every phase (probes, logging)
        self.phase_results: list[TrainResult] = []
        # wall time this method cost outside this process: phases reused from another run, and the part of a
        # resumed phase that killed earlier processes did before its checkpoint
        self.elsewhere_wall_seconds = 0.0

    def new_model(self) -> torch.nn.Module:
        return self.setup.new_model(self.config.seed)

    def targets(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        a = self.args
        return self.sparsifier.targets(model, include_bias=a.include_bias,
                                       include_feature_projection=a.prune_feature_projection,
                                       include_feature_encoder=a.prune_feature_encoder,
                                       include_pos_conv=a.prune_pos_conv)

    def magnitude_mask(self, model: torch.nn.Module, sparsity: float | None = None) -> Mask:
        """Mask at ``sparsity`` (default: the target) from the model's current weights, with the chosen scope."""
        sparsity = self.args.sparsity if sparsity is None else sparsity
        with torch.no_grad():
            return self.sparsifier.update_mask(self.targets(model), sparsity)

    def random_mask(self, model: torch.nn.Module) -> Mask:
        """The random baseline at the target, as the scope draws it (random weights per tensor, neurons, heads)."""
        return self.sparsifier.random_mask(self.targets(model), self.args.sparsity, seed=self.config.seed)

    def check_scope(self) -> None:
        """A scope this model cannot take (N:M on widths it does not divide) fails here, not after fine-tuning."""
        if self.sparsifier.checks_targets:  # building a model costs a load: only for scopes that may not fit
            with torch.no_grad():
                self.sparsifier.check_targets(self.targets(self.new_model()))

    def iou_with_pretrained(self, mask: Mask) -> float | None:
        """IoU of ``mask`` with the magnitude mask of the PRETRAINED weights at the target: how close the method
        stays to the start every language shares (the report sets cross-language overlap against it). Recorded
        when the run ends, so a report needs no model; None where it means nothing (no pruning, scopes of whole
        units or fixed patterns)."""
        if self.args.method == "none" or not self.sparsifier.weight_masks:
            return None
        with torch.no_grad():
            pretrained = {n: p.detach() for n, p in self.targets(self.new_model()).items() if n in mask}
            start = self.sparsifier.update_mask(pretrained, self.args.sparsity)
        return round(mask.iou(start), 6)

    def mask_factory(self, sparsity: float | None = None):
        return lambda model: self.magnitude_mask(model, sparsity)

    def finetune(self, model: torch.nn.Module, name: str, hooks: Sequence[TrainingHook] = ()) -> TrainResult:
        """One fine-tuning phase with the shared schedule, in ``output_dir/<name>``."""
        with self.record.phase(name) as phase:
            result = train(model, self.setup.train_set, self.setup.valid_set, with_output_dir(self.config, name),
                           self.setup.objective, [*hooks, *self.extra_hooks])
            upkeep = sum(getattr(h, "upkeep_seconds", 0.0) for h in hooks)
            phase.update(phase_facts(result), mask_upkeep_seconds=round(upkeep, 3))
            self.elsewhere_wall_seconds += result.earlier_wall_seconds
            for hook in hooks:
                if getattr(hook, "reprunes", None):  # the report plots how far the mask moved from its start
                    phase["reprunes"] = thinned(hook.reprunes)
        self.phase_results.append(result)
        return result

    def dense_finetune(self, model: torch.nn.Module, name: str) -> TrainResult:
        """The first, unmasked fine-tuning of OMP/IMP: run it, or load it from ``--dense-checkpoint``.

        It is step for step the ``none`` run of the same data, seed and schedule, so a sweep need not repeat it;
        the reused phase keeps that run's steps and wall time so cost comparisons stay honest.
        """
        if not self.args.dense_checkpoint:
            return self.finetune(model, name)
        source = Path(self.args.dense_checkpoint)
        dense = completed_run(source, "none", "--dense-checkpoint", self.record)
        model.load_state_dict(load_weights(type(model), source / "finetune" / "model"))
        return self._reuse_phase(name, dense.phase("finetune"), source)

    def continue_run(self, model: torch.nn.Module, source: Path, method: str, flag: str) -> Run:
        """Load the final weights of a finished run of ``method`` and take over its phases as reused cost.

        Returns that run's record (its phases keep their names, so this run's own phases continue after them).
        """
        earlier = completed_run(source, method, flag, self.record)
        model.load_state_dict(load_weights(type(model), source / "model"))
        for phase in earlier.phases:
            if phase.name != "export":
                self._reuse_phase(phase.name, phase, source)
        return earlier

    def _reuse_phase(self, name: str, done: Phase, source: Path) -> TrainResult | None:
        """Record a phase another run already did: its steps and wall time become part of this run's cost."""
        wall, steps = done.cost_seconds, done.total_steps
        with self.record.phase(name) as phase:
            if done.is_training:
                phase.update(steps=steps, total_steps=steps, resumed_from_step=0, final=done.final,
                             train_seconds=done.train_seconds)
            else:
                phase.update({k: v for k, v in done.facts.items() if k in ("sparsity", "mask_seconds")})
            phase.update(reused_from=str(source), reused_wall_seconds=wall)
        self.elsewhere_wall_seconds += wall
        if not done.is_training:
            return None
        result = TrainResult(steps=steps, epochs=0, wall_seconds=wall, train_seconds=done.train_seconds,
                             train_audio_seconds=0.0, resumed_from_step=0, final_metrics=done.final,
                             best_metrics={}, best_step=0, history=[], model_dir=str(source), best_dir=None)
        self.phase_results.append(result)
        return result

    def timed_mask(self, name: str, make) -> Mask:
        """Compute a mask inside a recorded ``prune`` phase (its wall time is part of the method's cost)."""
        with self.record.phase(name) as phase:
            t0 = time.perf_counter()
            mask = make().broadcast_()
            phase.update(sparsity=round(mask.sparsity(), 6), mask_seconds=round(time.perf_counter() - t0, 4))
        return mask


def thinned(entries: list, keep: int = 200) -> list:
    """At most ``keep`` entries spread evenly over the list, first and last included (a long run re-prunes
    thousands of times; the record keeps the curve, not every point)."""
    if len(entries) <= keep:
        return list(entries)
    last = len(entries) - 1
    return [entries[round(i * last / (keep - 1))] for i in range(keep)]
