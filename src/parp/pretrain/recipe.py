"""The recipe that makes parp's embedded default encoder: SSL pretraining on unlabelled audio with THE loop.

``parp pretrain --sources A.tsv B/ --output_dir runs/pretrain --max_steps 4000`` builds the
dataset, the small wav2vec2 config and the objective, runs :func:`parp.training.loop.train` (checkpoints and
resume come from the loop), then writes beside the encoder folder ``pretraining.json`` (objective, steps, data
hours, wall time, hardware, loss history) and ``loss_curve.png``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..config import shared
from ..errors import ConfigError
from ..records import PRETRAINING, hardware, library_versions, write_record
from ..training.config import TrainConfig
from ..training.loop import train
from .data import UnlabelledAudioDataset
from .model import count_parameters, small_wav2vec2_config
from .objectives import make_objective
from .plots import plot_loss_curve

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig(TrainConfig):
    """Everything a pretraining run needs: the shared loop's options (with pretraining defaults, declared with
    ``parp.config.shared``) plus the data, model and objective (each field is a CLI flag)."""

    sources: list[str] = field(default_factory=list, metadata={
        "help": "Manifests (.tsv/.csv with a 'path' column), folders of audio, or audio files."})
    output_dir: str = shared(TrainConfig, "output_dir", default="runs/pretrain",
                             help="Checkpoints, best/ and model/ go here.")
    objective: str = field(default="best-rq", metadata={"help": "best-rq | wav2vec2 (contrastive)."})
    max_steps: int = shared(TrainConfig, "max_steps", default=4000, help="Optimizer updates.")
    learning_rate: float = shared(TrainConfig, "learning_rate", default=5e-4, help="Peak AdamW learning rate.")
    warmup_steps: int = shared(TrainConfig, "warmup_steps", default=400, help="Linear warm-up updates.")
    lr_schedule: str = shared(TrainConfig, "lr_schedule", default="cosine",
                              help="linear | cosine | constant after warm-up.")
    weight_decay: float = shared(TrainConfig, "weight_decay", default=0.01, help="AdamW weight decay.")
    max_batch_seconds: float = shared(TrainConfig, "max_batch_seconds", default=80.0,
                                      help="Audio seconds per batch (cap).")
    max_grad_norm: float = shared(TrainConfig, "max_grad_norm", default=5.0, help="Gradient clipping (0 disables).")
    freeze_feature_encoder: bool = shared(TrainConfig, "freeze_feature_encoder", default=False,
                                          help="Pretraining trains the CNN too.")
    seed: int = shared(TrainConfig, "seed", help="Seed for init, data order, masks and the BEST-RQ codebook.")
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0 = torch's default)."})
    # data
    max_clip_seconds: float = field(default=8.0, metadata={"help": "Longer clips are randomly cropped to this."})
    min_clip_seconds: float = field(default=0.5, metadata={"help": "Shorter clips are dropped."})
    valid_fraction: float = field(default=0.02, metadata={"help": "Held-out fraction of clips (validation)."})
    max_valid_clips: int = field(default=100, metadata={"help": "Cap on held-out clips (validation is costly on CPU)."})
    # model (see small_wav2vec2_config)
    conv_channels: int = field(default=160, metadata={"help": "Channels of each of the 7 CNN layers."})
    hidden_size: int = field(default=256, metadata={"help": "Transformer width."})
    num_layers: int = field(default=6, metadata={"help": "Transformer layers."})
    intermediate_size: int = field(default=1024, metadata={"help": "Feed-forward width."})
    model_overrides: str = field(default="", metadata={"help": "JSON object of extra Wav2Vec2Config fields."})
    # objective
    mask_prob: float = field(default=0.65, metadata={"help": "Span-start probability (x mask_length = masked share)."})
    mask_length: int = field(default=10, metadata={"help": "Masked span length in 20 ms frames."})
    codebook_size: int = field(default=1024, metadata={"help": "BEST-RQ codewords per codebook."})
    num_codebooks: int = field(default=1, metadata={"help": "BEST-RQ codebooks (independent targets)."})
    num_negatives: int = field(default=100, metadata={"help": "wav2vec2: distractors per masked frame."})

    def model_config(self):
        try:
            overrides = json.loads(self.model_overrides) if self.model_overrides else {}
        except ValueError:
            overrides = None
        if not isinstance(overrides, dict):
            raise ConfigError("--model_overrides must be a JSON object of Wav2Vec2Config fields")
        base = dict(conv_channels=self.conv_channels, hidden_size=self.hidden_size,
                    num_hidden_layers=self.num_layers, intermediate_size=self.intermediate_size,
                    num_negatives=self.num_negatives)
        return small_wav2vec2_config(**{**base, **overrides})

    def train_config(self) -> TrainConfig:
        """The shared loop's options of this config (the loop knows nothing about pretraining)."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})


def build_datasets(cfg: PretrainConfig, sampling_rate: int = 16000):
    if not cfg.sources:
        raise ConfigError("--sources: give at least one manifest, audio folder or audio file")
    data = UnlabelledAudioDataset(cfg.sources, sampling_rate=sampling_rate, max_seconds=cfg.max_clip_seconds,
                                  min_seconds=cfg.min_clip_seconds, seed=cfg.seed)
    if len(data) < 2:
        raise ConfigError(f"--sources: only {len(data)} usable clip(s) ({data.skipped} unreadable, "
                          f"{data.too_short} shorter than {cfg.min_clip_seconds} s)")
    train_set, valid_set = data.split(cfg.valid_fraction, cfg.max_valid_clips, seed=cfg.seed)
    return data, train_set, valid_set


def run_pretrain(cfg: PretrainConfig) -> dict:
    """Pretrain, export the encoder to ``output_dir/model`` (HF folder) and return the ``pretraining.json`` record."""
    started = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model_config = cfg.model_config()
    objective_kwargs = dict(mask_prob=cfg.mask_prob, mask_length=cfg.mask_length)
    if cfg.objective in ("best-rq", "bestrq"):
        objective_kwargs.update(codebook_size=cfg.codebook_size, num_codebooks=cfg.num_codebooks, seed=cfg.seed)
    else:
        objective_kwargs.update(anneal_steps=max(1, cfg.max_steps // 2))
    objective = make_objective(cfg.objective, model_config, **objective_kwargs)

    load_started = time.time()
    data, train_set, valid_set = build_datasets(cfg, objective.sampling_rate)
    load_seconds = time.time() - load_started
    log.info("pretraining data: %d clips (%.2f h), %d held out; %d unreadable skipped",
             len(train_set), train_set.total_seconds / 3600, len(valid_set), data.skipped)

    model = objective.build_model(seed=cfg.seed)
    hooks = list(objective.hooks()) if hasattr(objective, "hooks") else []
    result = train(model, train_set, valid_set, cfg.train_config(), objective, hooks=hooks)

    out = Path(cfg.output_dir)
    model_dir = Path(result.model_dir)
    record = {
        "objective": objective.describe(),
        "steps": result.steps,
        "resumed_from_step": result.resumed_from_step,
        "data": {"sources": [str(s) for s in cfg.sources], "train_clips": len(train_set),
                 "train_hours": round(train_set.total_seconds / 3600, 4), "valid_clips": len(valid_set),
                 "valid_hours": round(valid_set.total_seconds / 3600, 4), "unreadable_skipped": data.skipped,
                 "too_short_dropped": data.too_short, "decode_seconds": round(load_seconds, 1)},
        "model": {"encoder_parameters": count_parameters(model.wav2vec2),
                  "pretraining_parameters": count_parameters(model), **{k: getattr(model_config, k) for k in (
                      "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_dim")}},
        "wall_seconds": round(time.time() - started, 1),
        "earlier_wall_seconds": result.earlier_wall_seconds,  # killed earlier processes, up to their checkpoint
        "train_seconds": result.train_seconds,
        "train_audio_seconds": result.train_audio_seconds,
        "steps_per_second": round(result.steps / max(result.train_seconds, 1e-9), 4)
        if not result.resumed_from_step else None,
        "audio_seconds_per_second": round(result.audio_seconds_per_second, 2),
        "final_metrics": result.final_metrics,
        "best_metrics": result.best_metrics,
        "best_step": result.best_step,
        "hardware": hardware(),
        "versions": library_versions(),
        "config": asdict(cfg),
        "history": result.history,
    }
    for folder in (out, model_dir):
        write_record(folder, PRETRAINING, record)
    plot_loss_curve(result.history, out / "loss_curve.png",
                    f"{objective.name} pretraining, {record['data']['train_hours']:.2f} h audio, {result.steps} updates")
    return record
