"""The point of SSL, measured: fine-tune a pretrained encoder and the same architecture from random
initialisation with the same budget, data order and seed; compare validation CER curves.

``parp pretrain downstream --checkpoint FOLDER --train_manifest mboshi/train.tsv --output_dir runs/gain``
writes ``downstream.json`` and ``downstream.png``. Each arm is an ordinary ``parp finetune`` run in its own
folder, so a finished arm is not rerun (the arms can be run at different times: ``--arms random``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCTC

from ..data import DataArguments
from ..errors import ConfigError
from ..models import ModelArguments, default_model_path
from ..records import DOWNSTREAM, is_completed, load_run, write_record
from ..training.finetune import run_finetune
from ..training.config import TrainConfig
from .plots import plot_curves


@dataclass
class DownstreamArguments:
    checkpoint: str | None = field(default=None, metadata={"help": "Pretrained encoder folder (default: embedded)."})
    arms: list[str] = field(default_factory=lambda: ["pretrained", "random"], metadata={
        "help": "Which arms to run now: pretrained and/or random."})


def random_init_folder(checkpoint: str, folder: Path, seed: int) -> Path:
    """The checkpoint's architecture with freshly initialised weights (what SSL pretraining is compared to)."""
    config = AutoConfig.from_pretrained(checkpoint)
    torch.manual_seed(seed)
    AutoModelForCTC.from_config(config).save_pretrained(folder)
    return folder


def _curve(run_dir: Path) -> dict:
    record = load_run(run_dir)
    history = record.history
    return {
        "status": record.status,
        "valid_cer": [(h["step"], h["valid_cer"]) for h in history if "valid_cer" in h],
        "train_loss": [(h["step"], h["loss"]) for h in history if "loss" in h],
        "final": record.metrics.get("final"),
        "best": record.metrics.get("best"),
        "wall_seconds": record.data.get("wall_seconds"),
    }


def run_downstream(args: DownstreamArguments, data: DataArguments, model: ModelArguments, train: TrainConfig) -> dict:
    checkpoint = args.checkpoint or str(default_model_path())
    if not Path(checkpoint, "config.json").is_file():
        raise ConfigError(f"--checkpoint {checkpoint}: not a model folder (no config.json)")
    out = Path(train.output_dir)
    arms = {"pretrained": checkpoint}
    if "random" in args.arms or (out / "random" / "run.json").exists():
        arms["random"] = str(random_init_folder(checkpoint, out / "random-init", train.seed))
    for arm in args.arms:
        if arm not in arms:
            raise ConfigError(f"--arms: unknown arm {arm!r} (pretrained, random)")
        run_dir = out / arm
        if not is_completed(run_dir):
            run_finetune(data, replace(model, model=arms[arm]), replace(train, output_dir=str(run_dir)))
    return collect({arm: out / arm for arm in arms if (out / arm / "run.json").exists()}, out,
                   {"checkpoint": checkpoint})


def collect(runs: dict[str, Path], out: Path, extra: dict | None = None) -> dict:
    """``downstream.json`` + ``downstream.png`` from finished fine-tuning runs of one schedule, one arm each (also for
    runs made by plain ``parp finetune``, e.g. the recipe trials)."""
    curves = {arm: _curve(Path(run_dir)) for arm, run_dir in runs.items()}
    train = load_run(next(iter(runs.values()))).section("train")
    summary = {**(extra or {}), "schedule": {"max_steps": train["max_steps"], "lr": train["learning_rate"],
                                             "seed": train["seed"], "max_batch_seconds": train["max_batch_seconds"]},
               "arms": curves}
    write_record(out, DOWNSTREAM, summary)
    plot_curves(curves, out / "downstream.png")
    return summary
