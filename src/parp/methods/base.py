"""What every pruning method shares: its arguments, a context that runs fine-tuning phases, the final export.

A method is a function ``run(ctx) -> (model, mask)`` in its own short module; it composes fine-tuning phases
(``ctx.finetune``, which is the one loop) with masks (``ctx.magnitude_mask`` ...). ``run_prune`` picks the method,
applies the final exact re-prune, exports the model and writes the run record.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from accelerate import PartialState

from ..errors import ConfigError, MaskError
from ..records import Phase, Run, RunRecord, read_run
from ..sparsity import Mask, validate_sparsity
from ..sparsity.scopes import parse_n_m, random_scope_mask, scope_mask, scope_parameters
from ..sparsity.validation import validate_n_m
from ..training.finetune import FinetuneSetup, with_output_dir
from ..training.hooks import TrainingHook
from ..training.loop import TrainConfig, TrainResult, train

METHOD_NAMES = ("parp", "omp", "imp", "mpi", "random", "none")


@dataclass
class PruneArguments:
    method: str = field(default="parp", metadata={
        "help": "parp | omp | imp | mpi | random | none (PARP-P': parp with --initial-mask)."})
    sparsity: float = field(default=0.5, metadata={"help": "Target fraction of prunable weights set to zero, in [0, 1)."})
    scope: str = field(default="global", metadata={
        "help": "Magnitude ranking: global (across all prunable layers, the paper's) | layer (per layer) | 2:4 (N:M, "
                "sparse kernels on GPU) | ffn (whole feed-forward neurons by L2 norm, the same number per layer; "
                "also exported with the neurons removed: a smaller, faster model)."})
    prune_every: int = field(default=50, metadata={
        "help": "PARP: re-prune to the target every N updates (official code: ~50-150); 0 = never during "
                "fine-tuning, the final re-prune only (recorded as prune_every 0)."})
    imp_rounds: int = field(default=3, metadata={"help": "IMP: number of prune/rewind/fine-tune rounds."})
    initial_mask: str | None = field(default=None, metadata={
        "help": "PARP-P': start PARP from this mask file (e.g. OMP on another language)."})
    include_bias: bool = field(default=False, metadata={"help": "Also prune the biases of the target linears."})
    prune_feature_projection: bool = field(default=False, metadata={"help": "Also prune the feature projection."})
    prune_feature_encoder: bool = field(default=False, metadata={"help": "Also prune the CNN feature encoder."})
    prune_pos_conv: bool = field(default=False, metadata={"help": "Also prune the positional convolution."})
    compressed_checkpoint: bool = field(default=True, metadata={
        "help": "Also write the compressed sparse checkpoint (bitmask + non-zero values)."})
    dense_checkpoint: str | None = field(default=None, metadata={
        "help": "OMP/IMP: output folder of a finished --method none run with the same data and schedule; its "
                "fine-tuned weights replace the identical first dense fine-tuning (its steps and time still count)."})
    imp_checkpoint: str | None = field(default=None, metadata={
        "help": "IMP: output folder of a finished IMP run at a lower sparsity with the same data and schedule; "
                "its rounds are reused (their steps and time still count) and --imp-rounds more rounds continue "
                "from its fine-tuned weights to --sparsity (one IMP trajectory through several sparsities)."})


def validate_prune_arguments(args: PruneArguments) -> None:
    if args.method not in METHOD_NAMES:
        raise ConfigError(f"--method must be one of {', '.join(METHOD_NAMES)}, got {args.method!r}")
    validate_sparsity(args.sparsity, "--sparsity")
    if args.scope not in ("global", "layer", "ffn") and not parse_n_m(args.scope):
        raise ConfigError(f"--scope must be global, layer, ffn or N:M such as 2:4, got {args.scope!r}")
    if args.scope == "ffn":
        extra = [flag for flag, on in (("--include-bias", args.include_bias),
                                       ("--prune-feature-projection", args.prune_feature_projection),
                                       ("--prune-feature-encoder", args.prune_feature_encoder),
                                       ("--prune-pos-conv", args.prune_pos_conv)) if on]
        if extra:
            raise ConfigError(f"--scope ffn prunes whole feed-forward neurons (their fc1 bias included); "
                              f"{extra[0]} applies to the weight scopes only")
    if parse_n_m(args.scope):
        try:
            validate_n_m(*parse_n_m(args.scope))
        except MaskError as exc:
            raise ConfigError(f"--scope {args.scope}: {exc}") from None
    if args.prune_every < 0:
        raise ConfigError(f"--prune-every must be >= 0, got {args.prune_every}")
    if args.imp_rounds < 1:
        raise ConfigError(f"--imp-rounds must be at least 1, got {args.imp_rounds}")
    if args.initial_mask and args.method != "parp":
        raise ConfigError(f"--initial-mask starts PARP-P' and needs --method parp, got --method {args.method}")
    if args.initial_mask and not Path(args.initial_mask).is_file():
        raise ConfigError(f"--initial-mask {args.initial_mask}: file not found")
    if args.dense_checkpoint and args.method not in ("omp", "imp"):
        raise ConfigError(f"--dense-checkpoint replaces the dense fine-tuning of omp/imp, not of {args.method}")
    if args.imp_checkpoint and args.method != "imp":
        raise ConfigError(f"--imp-checkpoint continues an IMP run and needs --method imp, got --method {args.method}")
    if args.imp_checkpoint and args.dense_checkpoint:
        raise ConfigError("--imp-checkpoint and --dense-checkpoint exclude each other: the IMP run given already "
                          "holds the dense fine-tuning")
    if args.imp_checkpoint:
        _check_imp_start(Path(args.imp_checkpoint), args.sparsity)


def _check_imp_start(source: Path, target: float) -> None:
    """The IMP run to continue must have stopped below the target (a trajectory only prunes further)."""
    run = read_run(source)
    earlier = run.section("prune").get("sparsity") if run else None
    if not isinstance(earlier, (int, float)):
        raise ConfigError(f"--imp-checkpoint {source}: no readable run.json of a 'parp prune --method imp' run")
    if not earlier < target:
        raise ConfigError(f"--imp-checkpoint {source}: that run reached sparsity {earlier:g}; continuing it needs a "
                          f"higher --sparsity, got {target:g}")


class MethodContext:
    """Runs fine-tuning phases for a method and records their cost."""

    def __init__(self, setup: FinetuneSetup, config: TrainConfig, args: PruneArguments, record: RunRecord,
                 extra_hooks: Sequence[TrainingHook] = ()):
        self.setup, self.config, self.args, self.record = setup, config, args, record
        self.extra_hooks = list(extra_hooks)  # run after the method's own hooks in every phase (probes, logging)
        self.phase_results: list[TrainResult] = []
        # wall time this method cost outside this process: phases reused from another run, and the part of a
        # resumed phase that killed earlier processes did before its checkpoint
        self.elsewhere_wall_seconds = 0.0

    def new_model(self) -> torch.nn.Module:
        return self.setup.new_model(self.config.seed)

    def targets(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        a = self.args
        return scope_parameters(model, a.scope, include_bias=a.include_bias,
                                include_feature_projection=a.prune_feature_projection,
                                include_feature_encoder=a.prune_feature_encoder, include_pos_conv=a.prune_pos_conv)

    def magnitude_mask(self, model: torch.nn.Module, sparsity: float | None = None) -> Mask:
        """Mask at ``sparsity`` (default: the target) from the model's current weights, with the chosen scope."""
        sparsity = self.args.sparsity if sparsity is None else sparsity
        return scope_mask(self.targets(model), sparsity, self.args.scope)

    def random_mask(self, model: torch.nn.Module) -> Mask:
        """The random baseline at the target: random weights per tensor, or random neurons with ``--scope ffn``."""
        return random_scope_mask(self.targets(model), self.args.sparsity, self.args.scope, seed=self.config.seed)

    def check_scope(self) -> None:
        """An N:M scope that does not divide the model's layers fails here, not after the first fine-tuning."""
        n_m = parse_n_m(self.args.scope)
        if n_m:
            try:
                with torch.no_grad():
                    Mask.n_m(self.targets(self.new_model()), *n_m)
            except MaskError as exc:
                raise MaskError(f"--scope {self.args.scope}: {exc}") from None

    def iou_with_pretrained(self, mask: Mask) -> float | None:
        """IoU of ``mask`` with the magnitude mask of the PRETRAINED weights at the target: how close the method
        stays to the start every language shares (the report sets cross-language overlap against it). Recorded
        when the run ends, so a report needs no model; None where it means nothing (no pruning, neuron or N:M
        scopes)."""
        if self.args.method == "none" or self.args.scope not in ("global", "layer"):
            return None
        with torch.no_grad():
            pretrained = {n: p.detach() for n, p in self.targets(self.new_model()).items() if n in mask}
            start = Mask.magnitude(pretrained, self.args.sparsity, scope=self.args.scope)
        return round(mask.iou(start), 6)

    def mask_factory(self, sparsity: float | None = None):
        return lambda model: self.magnitude_mask(model, sparsity)

    def finetune(self, model: torch.nn.Module, name: str, hooks: Sequence[TrainingHook] = ()) -> TrainResult:
        """One fine-tuning phase with the shared schedule, in ``output_dir/<name>``."""
        with self.record.phase(name) as phase:
            result = train(model, self.setup.train_set, self.setup.valid_set, with_output_dir(self.config, name),
                           self.setup.objective, [*hooks, *self.extra_hooks])
            upkeep = sum(getattr(h, "upkeep_seconds", 0.0) for h in hooks)
            phase.update(steps=result.steps - result.resumed_from_step, total_steps=result.steps,
                         resumed_from_step=result.resumed_from_step, final=result.final_metrics,
                         mask_upkeep_seconds=round(upkeep, 3), train_seconds=result.train_seconds,
                         processes=PartialState().num_processes, best_step=result.best_step,
                         stopped_early=result.stopped_early, validation_curve=result.validation_curve)
            if result.earlier_wall_seconds:
                phase["earlier_wall_seconds"] = result.earlier_wall_seconds
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
        dense = _completed_run(source, "none", "--dense-checkpoint", self.record)
        model.load_state_dict(_load_weights(type(model), source / "finetune" / "model"))
        return self._reuse_phase(name, dense.phase("finetune"), source)

    def continue_run(self, model: torch.nn.Module, source: Path, method: str, flag: str) -> Run:
        """Load the final weights of a finished run of ``method`` and take over its phases as reused cost.

        Returns that run's record (its phases keep their names, so this run's own phases continue after them).
        """
        earlier = _completed_run(source, method, flag, self.record)
        model.load_state_dict(_load_weights(type(model), source / "model"))
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


# schedule fields that do not change the trained weights (where files go, how often to log or checkpoint)
_NEUTRAL_TRAIN_FIELDS = {"output_dir", "progress", "resume", "save_every", "log_every", "num_workers", "report_to",
                         "dense_checkpoint", "compressed_checkpoint", "overwrite_output_dir",
                         # speed options: same schedule, at most float-rounding differences (and absent from
                         # records written before they existed)
                         "torch_compile", "gradient_checkpointing", "tf32"}


# pruning settings that must match for a run's masks to continue in another run
_MASK_SCOPE_FIELDS = ("scope", "include_bias", "prune_feature_projection", "prune_feature_encoder", "prune_pos_conv")


def _completed_run(source: Path, method: str, flag: str, record: RunRecord) -> Run:
    """The run record of a finished ``method`` run whose data, model and schedule match this run's."""
    earlier = read_run(source)
    if earlier is None:
        raise ConfigError(f"{flag} {source}: no finished 'parp prune --method {method}' run there (no run.json)")
    arguments = earlier.arguments
    if not earlier.completed or earlier.section("prune").get("method") != method:
        raise ConfigError(f"{flag} {source}: the run there is not a completed --method {method} run")
    for section, differing in differing_settings(arguments, record.data["arguments"]).items():
        raise ConfigError(f"{flag} {source}: its {section} settings differ "
                          f"({', '.join(differing)}), so its fine-tuning is not part of this run")
    theirs, ours = arguments.get("prune", {}), record.data["arguments"].get("prune", {})
    differing = [k for k in _MASK_SCOPE_FIELDS if theirs.get(k) != ours.get(k)]
    if method != "none" and differing:
        raise ConfigError(f"{flag} {source}: it pruned with other settings ({', '.join(differing)})")
    return earlier


def _load_weights(model_class, directory: Path) -> dict[str, torch.Tensor]:
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{directory}: no saved model there (the run's output folder is incomplete)")
    return model_class.from_pretrained(str(directory)).state_dict()


# what runs recorded before an option existed did, per option added since records began (a record without the
# option matches a run that sets it to this value, and only that)
SETTING_BEFORE_IT_EXISTED = {"ctc_head_init": "random", "freeze_feature_projection": False,
                             "early_stopping_patience": 0, "early_stopping_min_delta": 0.0}


def differing_settings(theirs: dict, ours: dict, sections=("data", "model", "train")) -> dict[str, list[str]]:
    """Per section of two runs' recorded arguments, the settings that would change the trained weights. A setting
    one record lacks (written before the option existed) matches the value that means what such runs did."""
    result = {}

    def value(side: dict, key: str) -> Any:  # absent: None, as before, unless the option's old behaviour is known
        return side[key] if key in side else SETTING_BEFORE_IT_EXISTED.get(key)

    for section in sections:
        a, b = theirs.get(section, {}), ours.get(section, {})
        differing = sorted(k for k in set(a) | set(b)
                           if k not in _NEUTRAL_TRAIN_FIELDS and value(a, k) != value(b, k))
        if differing:
            result[section] = differing
    return result


def thinned(entries: list, keep: int = 200) -> list:
    """At most ``keep`` entries spread evenly over the list, first and last included (a long run re-prunes
    thousands of times; the record keeps the curve, not every point)."""
    if len(entries) <= keep:
        return list(entries)
    last = len(entries) - 1
    return [entries[round(i * last / (keep - 1))] for i in range(keep)]


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights to rewind to (IMP)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def rewind(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(copy.copy(weights))
