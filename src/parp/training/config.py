"""The optimisation settings every job shares (:class:`TrainConfig`, each field a CLI flag and a config-file key)
and their checks, apart from the loop that runs them (``parp.training.loop``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from . import tracking

LR_SCHEDULES = ("linear", "cosine", "constant", "tri-stage")


@dataclass
class TrainConfig:
    """Optimisation settings shared by every job (each field is a CLI flag and a config-file key)."""

    output_dir: str = field(default="runs/finetune", metadata={"help": "Where checkpoints, models and records go."})
    # The defaults below are the CTC fine-tuning recipe measured for the embedded encoder on Mboshi within a 10-minute
    # CPU budget (docs/results/recipe/README.md); a large encoder such as XLS-R wants a far lower peak LR (~1e-4).
    max_steps: int = field(default=1200, metadata={"help": "Number of optimizer updates."})
    max_minutes: float = field(default=0.0, metadata={
        "help": "Also stop after this many minutes of training in this process (0 = no limit); the run then ends "
                "as at max_steps (final validation, export, checkpoint)."})
    learning_rate: float = field(default=2e-3, metadata={
        "help": "Peak learning rate (AdamW); the default suits the small embedded encoder, ~1e-4 suits XLS-R."})
    warmup_steps: int = field(default=100, metadata={"help": "Linear warm-up updates."})
    lr_schedule: str = field(default="linear", metadata={
        "help": "Decay after warm-up: linear | cosine | constant | tri-stage (wav2vec 2.0's: hold the peak until half "
                "of max_steps, then decay exponentially to 5 percent of it)."})
    layer_lr_decay: float = field(default=1.0, metadata={
        "help": "Layer-wise LR decay: transformer layer i of L trains at decay**(L-i) x the peak LR, the embeddings "
                "below it at decay**(L+1), the CTC head at the peak (1 = one LR for all)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (not on biases and norms)."})
    max_batch_seconds: float = field(default=16.0, metadata={"help": "Cap on total audio seconds per batch."})
    grad_accum_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer update."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    freeze_feature_encoder: bool = field(default=True, metadata={"help": "Keep the CNN feature encoder frozen."})
    freeze_feature_projection: bool = field(default=False, metadata={
        "help": "Also keep the feature projection (the layer norm and linear between the CNN and the transformer) "
                "frozen."})
    freeze_transformer_steps: int = field(default=0, metadata={
        "help": "Train only the output head for the first N updates (0 = never; PARP's fair default)."})
    mixed_precision: str = field(default="auto", metadata={"help": "auto | no | fp16 | bf16 (auto: bf16 on GPU)."})
    eval_every: int = field(default=250, metadata={"help": "Validate every N updates (0 = only at the end)."})
    early_stopping_patience: int = field(default=0, metadata={
        "help": "Train to convergence: stop after N validations in a row that do not improve the best validation "
                "metric by more than --early-stopping-min-delta, and export and score the best model (a pruned "
                "run is validated at its target sparsity); max_steps stays the LR schedule's length. 0 = off."})
    early_stopping_min_delta: float = field(default=0.0, metadata={
        "help": "Smallest decrease of the validation metric (e.g. CER) that counts as an improvement."})
    save_every: int = field(default=250, metadata={"help": "Write a resumable checkpoint every N updates (0 = never)."})
    log_every: int = field(default=10, metadata={"help": "Record the training loss every N updates."})
    seed: int = field(default=0, metadata={"help": "Seed for initialisation, data order and masking."})
    resume: bool = field(default=True, metadata={
        "help": "Resume from output_dir/checkpoints if present (only with the settings that wrote them)."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Delete the run already in output_dir (only what parp wrote there) and start over (instead of "
                "resuming it)."})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    torch_compile: bool = field(default=False, metadata={
        "help": "Compile the model with torch.compile (inductor); off until measured on a GPU (bench/gpu_check.sh)."})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "Recompute activations in backward (less memory for large encoders on long clips); to be measured."})
    tf32: bool = field(default=False, metadata={"help": "Allow TF32 matmuls on Ampere+ GPUs; to be measured."})
    feature_cache_mb: float = field(default=1024.0, metadata={
        "help": "On the CPU, keep each clip's features from the frozen CNN feature encoder, up to this many MB, instead "
                "of recomputing them every epoch and validation (exact: same numbers; 0 = off)."})
    report_to: str = field(default="auto", metadata={
        "help": "Live curves: tensorboard | wandb | none | all (auto: tensorboard when installed) in output_dir/logs."})


def validate_train_config(config: TrainConfig) -> None:
    """One clear line per bad value, naming the flag."""

    def bad(flag: str, why: str, value: Any) -> ConfigError:
        return ConfigError(f"--{flag.replace('_', '-')} {why}, got {value!r}")

    def finite(x: Any) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x)

    if not finite(config.learning_rate) or config.learning_rate <= 0:
        raise bad("learning_rate", "must be a positive number", config.learning_rate)
    for name in ("max_steps", "grad_accum_steps"):
        if getattr(config, name) < 1:
            raise bad(name, "must be at least 1", getattr(config, name))
    if not finite(config.max_minutes) or config.max_minutes < 0:
        raise bad("max_minutes", "must be >= 0", config.max_minutes)
    for name in ("warmup_steps", "eval_every", "save_every", "freeze_transformer_steps", "num_workers",
                 "early_stopping_patience"):
        if getattr(config, name) < 0:
            raise bad(name, "must be >= 0", getattr(config, name))
    if config.early_stopping_patience and not config.eval_every:
        raise bad("early_stopping_patience", "needs validation during training (--eval-every > 0)",
                  config.early_stopping_patience)
    if not finite(config.early_stopping_min_delta) or config.early_stopping_min_delta < 0:
        raise bad("early_stopping_min_delta", "must be >= 0", config.early_stopping_min_delta)
    if config.log_every < 1:
        raise bad("log_every", "must be at least 1", config.log_every)
    if not finite(config.max_batch_seconds) or config.max_batch_seconds <= 0:
        raise bad("max_batch_seconds", "must be a positive number", config.max_batch_seconds)
    if not finite(config.max_grad_norm) or config.max_grad_norm < 0:
        raise bad("max_grad_norm", "must be >= 0", config.max_grad_norm)
    if not finite(config.feature_cache_mb) or config.feature_cache_mb < 0:
        raise bad("feature_cache_mb", "must be >= 0", config.feature_cache_mb)
    if not finite(config.weight_decay) or config.weight_decay < 0:
        raise bad("weight_decay", "must be >= 0", config.weight_decay)
    if config.lr_schedule not in LR_SCHEDULES:
        raise bad("lr_schedule", "must be " + ", ".join(LR_SCHEDULES), config.lr_schedule)
    if not finite(config.layer_lr_decay) or not 0 < config.layer_lr_decay <= 1:
        raise bad("layer_lr_decay", "must be in (0, 1]", config.layer_lr_decay)
    if config.mixed_precision not in ("auto", "no", "fp16", "bf16"):
        raise bad("mixed_precision", "must be auto, no, fp16 or bf16", config.mixed_precision)
    tracking.resolve_report_to(config.report_to)
