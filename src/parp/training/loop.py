"""THE training loop. Fine-tuning, pretraining and every pruning method run through ``train``.

One code path for CPU, one GPU and many processes (Accelerate; ``accelerate launch`` / ``torchrun`` need no code
change). What differs between jobs is injected: an *objective* (how to batch, the loss, how to validate, how to
export) and *hooks* (what to do around optimizer steps; see ``hooks.py``).

Output folder layout::

    output_dir/checkpoints/step-N/   resumable state, safetensors + JSON only (model, optimizer, scheduler, RNG, hooks)
    output_dir/checkpoints/latest    name of the newest complete checkpoint (written last, atomically)
    output_dir/best/                 best model by validation metric (exported by the objective)
    output_dir/model/                final model (after ``on_train_end``, e.g. PARP's final re-prune)
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.batching import LengthGroupedBatchSampler
from ..errors import ConfigError
from . import tracking
from .checkpoint import load_training_state, read_hook_tensors, read_trainer_state, save_training_state
from .config import TrainConfig, validate_train_config
from .divergence import DivergenceWatch, check_weights
from .feature_cache import feature_cache
from .hooks import LoopState, TrainingHook
from .resume_check import refuse_changed
from .speed import apply_speed_options

log = logging.getLogger(__name__)


TRI_STAGE_HOLD_UNTIL = 0.5  # fraction of max_steps held at the peak (wav2vec 2.0: 10 % warm-up + 40 % hold)
TRI_STAGE_FINAL_SCALE = 0.05  # the LR decays exponentially to this fraction of the peak


@dataclass
class Progress:
    """What a resumed run must carry on from besides the weights and the step: saved in trainer_state.json under
    these field names (a checkpoint of an older parp lacks some; they start at their defaults)."""

    batches_in_epoch: int = 0
    best_value: float | None = None
    best_step: int = 0
    best_metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    train_audio_seconds: float = 0.0
    evals_without_improvement: int = 0
    ADDED_LATER: ClassVar[tuple[str, ...]] = ("evals_without_improvement",)  # older checkpoints lack these

    @classmethod
    def required_keys(cls) -> list[str]:
        """The keys every checkpoint has had: one missing means a damaged trainer_state.json."""
        return [f.name for f in fields(cls) if f.name not in cls.ADDED_LATER]

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> "Progress":
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


class Objective(Protocol):
    """What a job plugs into the loop: batching, loss, validation and export."""

    metric_for_best: str  # lower is better

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]: ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def evaluate(self, model: torch.nn.Module, loader: Any, accelerator: Accelerator) -> dict[str, float]: ...

    def export(self, model: torch.nn.Module, directory: Path) -> None: ...


@dataclass
class TrainResult:
    steps: int
    epochs: int
    wall_seconds: float
    train_seconds: float  # time inside optimisation steps only (no validation / checkpoint I/O)
    train_audio_seconds: float
    resumed_from_step: int
    final_metrics: dict[str, float]
    best_metrics: dict[str, float]
    best_step: int
    history: list[dict[str, Any]]
    model_dir: str
    best_dir: str | None
    earlier_wall_seconds: float = 0.0  # spent by killed earlier processes up to the checkpoint this run resumed
    stopped_early: bool = False  # early stopping ended it before max_steps (with it on, model_dir is the best model)

    @property
    def validation_curve(self) -> list[dict[str, Any]]:
        """The validation entries of the history: the learning curve a convergence rule reads."""
        return [h for h in self.history if any(k.startswith("valid_") for k in h)]

    @property
    def audio_seconds_per_second(self) -> float:
        return self.train_audio_seconds / max(self.train_seconds, 1e-9)


def _cpu_processes() -> bool:
    """True under ``torchrun`` (WORLD_SIZE > 1) on a machine without an accelerator.

    Accelerate only starts a CPU process group (gloo) when told to run on CPU (``accelerate launch --cpu`` does
    that, ``torchrun`` does not); otherwise each process silently becomes an independent single-process run
    writing the same output folder.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    accel = getattr(torch, "accelerator", None)
    has_accelerator = accel.is_available() if accel is not None else torch.cuda.is_available()
    return not has_accelerator


def _mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def freeze_feature_encoder(model: torch.nn.Module) -> None:
    """Freeze the CNN feature encoder (standard for CTC fine-tuning of wav2vec2-style models)."""
    if hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
        return
    for name, param in model.named_parameters():
        if "feature_extractor" in name:
            param.requires_grad_(False)


def _is_head(name: str) -> bool:
    return name.startswith(("lm_head.", "head.", "project_q.", "project_hid.", "quantizer."))


def _layer_depth(name: str, n_layers: int) -> int:
    """Depth for layer-wise LR decay: 0 below the transformer, i + 1 in encoder layer i, n_layers + 1 for the head."""
    if _is_head(name):
        return n_layers + 1
    match = re.search(r"\.layers\.(\d+)\.", name)
    return int(match.group(1)) + 1 if match else 0


def _param_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Body vs head (the body can be held still for ``freeze_transformer_steps``), decay vs no decay, and one
    group per depth when ``layer_lr_decay`` < 1."""
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", 0)
    groups: dict[tuple[str, bool, int], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "head" if _is_head(name) else "body"
        no_decay = param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        depth = _layer_depth(name, n_layers) if config.layer_lr_decay < 1 else n_layers + 1
        groups.setdefault((part, no_decay, depth), []).append(param)
    return [{"params": params, "part": part, "weight_decay": 0.0 if no_decay else config.weight_decay,
             "lr": config.learning_rate * config.layer_lr_decay ** (n_layers + 1 - depth)}
            for (part, no_decay, depth), params in sorted(groups.items())]


def _lr_lambda(config: TrainConfig, part: str):
    def factor(step: int) -> float:
        if part == "body" and step < config.freeze_transformer_steps:
            return 0.0
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "constant":
            return 1.0
        if config.lr_schedule == "tri-stage":
            hold_end = max(config.warmup_steps, TRI_STAGE_HOLD_UNTIL * config.max_steps)
            progress = min(max((step - hold_end) / max(1.0, config.max_steps - hold_end), 0.0), 1.0)
            return TRI_STAGE_FINAL_SCALE ** progress
        progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if config.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return factor


def _make_loader(dataset, objective: Objective, config: TrainConfig, shuffle: bool) -> tuple[DataLoader, Any]:
    sampler = LengthGroupedBatchSampler(dataset.durations, config.max_batch_seconds, shuffle=shuffle, seed=config.seed)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=objective.collate, num_workers=config.num_workers)
    return loader, sampler


def _audio_seconds(batch: dict[str, torch.Tensor], objective: Objective) -> torch.Tensor | float:
    """Audio in a batch, for throughput figures (padding excluded when an attention mask says where it is).

    A device tensor when counted from the mask: the loop adds it up on the device and reads it once per log
    window, not once per micro-batch (each read stalls the host until the GPU catches up).
    """
    rate = getattr(objective, "sampling_rate", 16000)
    if "attention_mask" in batch:
        return batch["attention_mask"].sum(dtype=torch.float64) / rate
    if "input_values" in batch:
        return batch["input_values"].numel() / rate
    return 0.0


# ----------------------------------------------------------------------------------------------- checkpoints


def _latest_checkpoint(output_dir: Path) -> Path | None:
    pointer = output_dir / "checkpoints" / "latest"
    if not pointer.exists():
        return None
    try:
        path = output_dir / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{pointer}: unreadable checkpoint pointer; delete {pointer.parent} to train this phase "
                          f"again from its start, or start over with --overwrite-output-dir") from None
    return path if (path / "trainer_state.json").exists() else None


def _split_hook_state(hooks: Sequence[TrainingHook]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, plain = {}, {}
    for i, hook in enumerate(hooks):
        for key, value in hook.state_dict().items():
            full = f"{i}.{hook.name}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[full] = value.detach().cpu().contiguous()
            else:
                plain[full] = value
    return tensors, plain


def _restore_hook_state(hooks: Sequence[TrainingHook], tensors: dict[str, torch.Tensor], plain: dict[str, Any]):
    for i, hook in enumerate(hooks):
        prefix = f"{i}.{hook.name}."
        state = {k[len(prefix):]: v for k, v in {**plain, **tensors}.items() if k.startswith(prefix)}
        hook.load_state_dict(state)


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, state: LoopState, progress: Progress,
                     hooks: Sequence[TrainingHook], wall_seconds: float, objects: tuple) -> None:
    """``objects``: (model, optimizer, scheduler), written as safetensors + JSON (see ``checkpoint.py``)."""
    root = output_dir / "checkpoints"
    target = root / f"step-{state.step}"
    save_training_state(target, accelerator, *objects)
    if accelerator.is_main_process:
        tensors, plain = _split_hook_state(hooks)
        if tensors:
            save_file(tensors, str(target / "hooks.safetensors"))
        payload = {**asdict(progress), "wall_seconds": round(wall_seconds, 3), "step": state.step, "epoch": state.epoch,
                   "history": state.history,
                   "hooks": plain, "config": asdict(state.config)}
        (target / "trainer_state.json").write_text(json.dumps(payload, indent=1))
        tmp = root / "latest.tmp"
        tmp.write_text(target.name)
        os.replace(tmp, root / "latest")  # the checkpoint counts only once this pointer names it
        for old in root.glob("step-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


# ---------------------------------------------------------------------------------------------------- train


def train(model: torch.nn.Module, train_set, valid_set, config: TrainConfig, objective: Objective,
          hooks: Sequence[TrainingHook] = ()) -> TrainResult:
    """Optimise ``model`` on ``train_set`` with ``objective``; hooks run at the documented points."""
    validate_train_config(config)
    started = time.time()
    output_dir = Path(config.output_dir)
    dynamo_backend = apply_speed_options(model, config)
    accelerator = Accelerator(mixed_precision=_mixed_precision(config.mixed_precision),
                              gradient_accumulation_steps=config.grad_accum_steps, cpu=_cpu_processes(),
                              dynamo_backend=dynamo_backend,
                              log_with=tracking.resolve_report_to(config.report_to) or None,
                              project_dir=str(output_dir))
    tracking.start(accelerator, config)
    set_seed(config.seed)
    if config.freeze_feature_encoder:
        freeze_feature_encoder(model)
    if config.freeze_feature_projection:
        for name, param in model.named_parameters():
            if ".feature_projection." in f".{name}":
                param.requires_grad_(False)

    groups = _param_groups(model, config)
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [_lr_lambda(config, g["part"]) for g in groups])
    train_loader, sampler = _make_loader(train_set, objective, config, shuffle=True)
    valid_loader = _make_loader(valid_set, objective, config, shuffle=False)[0] if valid_set is not None else None

    model, optimizer = accelerator.prepare(model, optimizer)
    train_loader = accelerator.prepare(train_loader)
    if valid_loader is not None:
        valid_loader = accelerator.prepare(valid_loader)
    resumable = (model, optimizer, scheduler)

    state = LoopState(model=accelerator.unwrap_model(model), accelerator=accelerator, config=config,
                      optimizer=optimizer)
    progress = Progress()
    earlier_wall = 0.0
    resumed_from = 0
    checkpoint = _latest_checkpoint(output_dir) if config.resume else None
    if checkpoint is not None:
        saved = read_trainer_state(checkpoint, required=Progress.required_keys())
        refuse_changed({"train": saved.get("config", {})}, {"train": asdict(config)}, f"checkpoint {checkpoint}")
        load_training_state(checkpoint, accelerator, *resumable)
        state.step, state.epoch, state.history = saved["step"], saved["epoch"], saved["history"]
        progress = Progress.from_saved(saved)  # older checkpoints: fewer keys
        earlier_wall = saved.get("wall_seconds", 0.0)
        _restore_hook_state(hooks, read_hook_tensors(checkpoint), saved.get("hooks", {}))
        resumed_from = state.step
        accelerator.print(f"parp: resuming from {checkpoint} (step {state.step})")

    def evaluate() -> dict[str, float]:
        for hook in hooks:
            hook.on_before_evaluate(state)
        if valid_loader is None:
            return {}
        model.eval()
        with torch.no_grad():
            metrics = objective.evaluate(model, valid_loader, accelerator)
        model.train()
        state.metrics = metrics
        state.history.append({"step": state.step, **{f"valid_{k}": v for k, v in metrics.items()}})
        tracking.log(accelerator, metrics, state.step, prefix="valid/")
        return metrics

    def maybe_save_best(metrics: dict[str, float]) -> None:
        value = metrics.get(objective.metric_for_best)
        best = progress.best_value
        if value is None or not math.isfinite(value) or (
                best is not None and value >= best - config.early_stopping_min_delta):
            progress.evals_without_improvement += 1
            return
        progress.best_value, progress.best_step, progress.best_metrics = value, state.step, dict(metrics)
        progress.evals_without_improvement = 0
        if accelerator.is_main_process:
            objective.export(state.model, output_dir / "best")
        accelerator.wait_for_everyone()

    def converged() -> bool:
        patience = config.early_stopping_patience
        return bool(patience) and progress.evals_without_improvement >= patience

    def out_of_time() -> bool:
        return bool(config.max_minutes) and time.time() - started >= 60 * config.max_minutes

    # the frozen CNN run once per clip, for training and validation alike; the model's own forward back at the end
    with feature_cache(state.model, 0 if config.torch_compile else config.feature_cache_mb) as cache:
        for hook in hooks:
            hook.on_train_begin(state)
        check_weights(state.model, f"at step {state.step}, before training")
        watch = DivergenceWatch(accelerator.device, output_dir)

        bar = tqdm(total=config.max_steps, initial=state.step, desc="train", unit="step", dynamic_ncols=True,
                   disable=not (config.progress and accelerator.is_local_main_process))
        window_loss = torch.zeros((), device=accelerator.device)
        window_n = 0
        window_audio = torch.zeros((), dtype=torch.float64, device=accelerator.device)

        def flush_audio() -> None:  # the one host read of the audio count, per log window / checkpoint / end
            progress.train_audio_seconds += float(window_audio) * accelerator.num_processes
            window_audio.zero_()
        model.train()
        while state.step < config.max_steps:
            sampler.set_epoch(state.epoch)
            # Accelerate's loader re-sets the sampler's epoch from its own pass counter, which restarts at 0 in a
            # resumed process: align it, or a resumed run replays epoch 0's batch order.
            train_loader.set_epoch(state.epoch)
            skip = progress.batches_in_epoch
            loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
            finished_epoch = True
            step_started = time.time()
            for batch in loader:
                with accelerator.accumulate(model):
                    loss = objective.loss(model, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                progress.batches_in_epoch += 1
                window_audio += _audio_seconds(batch, objective)
                window_loss += loss.detach().float()
                watch.observe(loss, state.step + 1)
                window_n += 1
                if not accelerator.sync_gradients:
                    continue
                scheduler.step()
                state.step += 1
                for hook in hooks:
                    hook.on_step_end(state)
                progress.train_seconds += time.time() - step_started
                bar.update(1)
                if state.step % config.log_every == 0 or state.step == config.max_steps:
                    watch.check(state.model, state.step, accelerator)
                    mean_loss = accelerator.reduce(window_loss / max(window_n, 1), "mean").item()
                    flush_audio()
                    state.history.append({"step": state.step, "epoch": state.epoch, "loss": round(mean_loss, 5),
                                          "lr": scheduler.get_last_lr()[-1]})
                    bar.set_postfix(loss=f"{mean_loss:.3f}", refresh=False)
                    tracking.log_train(accelerator, state, hooks, loss=mean_loss, lr=scheduler.get_last_lr()[-1])
                    window_loss.zero_()
                    window_n = 0
                if config.eval_every and state.step % config.eval_every == 0 and state.step < config.max_steps:
                    metrics = evaluate()
                    maybe_save_best(metrics)
                    bar.write(f"step {state.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
                if config.save_every and state.step % config.save_every == 0 and state.step < config.max_steps:
                    flush_audio()
                    watch.check(state.model, state.step, accelerator)  # never checkpoint a diverged model
                    _save_checkpoint(accelerator, output_dir, state, progress, hooks,
                                     earlier_wall + time.time() - started, resumable)
                step_started = time.time()
                if state.step >= config.max_steps or out_of_time() or converged():
                    finished_epoch = False
                    break
            if finished_epoch:
                state.epoch += 1
                progress.batches_in_epoch = 0
            if out_of_time():
                accelerator.print(f"parp: --max-minutes {config.max_minutes} reached at step {state.step}")
                break
            if converged():
                accelerator.print(f"parp: early stopping at step {state.step}: {config.early_stopping_patience} "
                                  f"validations without improvement; the best, step {progress.best_step} "
                                  f"({objective.metric_for_best} {progress.best_value:.4f}), is exported")
                break
        bar.close()
        flush_audio()

        stopped_early = converged() and state.step < config.max_steps
        if config.early_stopping_patience and progress.best_value is not None:
            accelerator.wait_for_everyone()
            restore_weights(state.model, output_dir / "best")  # the run's result is its best validated model

        for hook in hooks:
            hook.on_train_end(state)
        watch.check(state.model, state.step, accelerator)
        final_metrics = evaluate()
        maybe_save_best(final_metrics)
        if accelerator.is_main_process:
            objective.export(state.model, output_dir / "model")
    if cache is not None and config.progress:
        accelerator.print(f"parp: feature cache: {cache.hits} hits, {cache.misses} misses, "
                          f"{cache.bytes / 2**20:.0f} MB")
    if config.save_every:
        _save_checkpoint(accelerator, output_dir, state, progress, hooks, earlier_wall + time.time() - started,
                         resumable)
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:  # not end_training(): it also destroys the process group, which
        tracker.finish()  # the next phase (OMP, IMP) or sweep cell of this torchrun process still needs
    best_dir = output_dir / "best"
    return TrainResult(
        steps=state.step, epochs=state.epoch, wall_seconds=round(time.time() - started, 3),
        train_seconds=round(progress.train_seconds, 3),
        train_audio_seconds=round(progress.train_audio_seconds, 3), resumed_from_step=resumed_from,
        final_metrics=final_metrics, best_metrics=progress.best_metrics,
        best_step=progress.best_step, history=state.history, model_dir=str(output_dir / "model"),
        best_dir=str(best_dir) if best_dir.exists() else None, earlier_wall_seconds=round(earlier_wall, 3),
        stopped_early=stopped_early)


def restore_weights(model: torch.nn.Module, directory: Path) -> None:
    """Load the weights an objective exported to ``directory`` (one or sharded safetensors files) into ``model``."""
    files = sorted(directory.glob("model*.safetensors"))
    if not files:
        raise ConfigError(f"{directory}: no exported weights (model.safetensors) to restore the best model from")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    model.load_state_dict(weights, strict=True)
