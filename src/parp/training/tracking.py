"""Live training curves through Accelerate's trackers (TensorBoard, Weights & Biases).

``--report-to auto`` (the default) is TensorBoard when ``tensorboard`` or ``tensorboardX`` is installed, else
nothing; curves go to ``output_dir/logs`` (``tensorboard --logdir runs/``). The loop logs loss and learning rate
every ``--log-every`` updates, the validation metrics at each validation, and whatever the hooks report
(``TrainingHook.log_values``: achieved sparsity, re-prune IoU).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from accelerate.utils import is_tensorboard_available, is_wandb_available

from ..errors import ConfigError

CHOICES = ("auto", "tensorboard", "wandb", "none", "all")
LOG_SUBDIR = "logs"


def _installed(name: str) -> bool:
    return {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}[name]()


def resolve_report_to(choice: str) -> list[str]:
    """``"tensorboard,wandb"`` / ``auto`` / ``all`` / ``none`` -> tracker names; a missing package is one error."""
    names = [c.strip() for c in str(choice).split(",") if c.strip()] or ["none"]
    bad = [n for n in names if n not in CHOICES]
    if bad:
        raise ConfigError(f"--report-to must be {', '.join(CHOICES)} (or a comma list), got {bad[0]!r}")
    if "none" in names:
        return []
    if "auto" in names:
        return ["tensorboard"] if _installed("tensorboard") else []
    wanted = ["tensorboard", "wandb"] if "all" in names else names
    if "all" in names:
        return [n for n in wanted if _installed(n)]
    for name in wanted:
        if not _installed(name):
            package = "tensorboard" if name == "tensorboard" else "wandb"
            raise ConfigError(f"--report-to {name} needs the {package} package (pip install {package})")
    return wanted


def _hparams(config: Any) -> dict[str, Any]:
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


def start(accelerator, config) -> None:
    """Open the trackers named by ``config.report_to`` (main process only, as Accelerate does)."""
    if not accelerator.log_with:
        return
    run = Path(config.output_dir).name
    accelerator.init_trackers(LOG_SUBDIR, config=_hparams(config),
                              init_kwargs={"wandb": {"dir": str(config.output_dir), "name": run}})


def log(accelerator, values: dict[str, Any], step: int, prefix: str = "") -> None:
    numbers = {f"{prefix}{k}": float(v) for k, v in values.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "epoch")}
    if accelerator.log_with and numbers:
        accelerator.log(numbers, step=step)


def log_train(accelerator, state, hooks, **values) -> None:
    """Loss, learning rate and the hooks' numbers (computed only when a tracker listens)."""
    if not accelerator.log_with:
        return
    for hook in hooks:
        values.update(getattr(hook, "log_values", lambda s: {})(state))
    log(accelerator, values, state.step, prefix="train/")
