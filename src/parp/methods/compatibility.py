"""Whether another run's work can stand in for part of this one: the settings that change trained weights
(:func:`differing_settings`, what older records mean by a missing one: :data:`SETTING_BEFORE_IT_EXISTED`), a
finished run to reuse (:func:`completed_run`) and its weights. ``parp.experiments.grid`` asks the same of a sweep's
finished cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..records import Run, RunRecord, read_run

# schedule fields that do not change the trained weights (where files go, how often to log or checkpoint)
NEUTRAL_TRAIN_FIELDS = {"output_dir", "progress", "resume", "save_every", "log_every", "num_workers", "report_to",
                        "dense_checkpoint", "compressed_checkpoint", "overwrite_output_dir",
                        # speed options: same schedule, at most float-rounding differences (and absent from
                        # records written before they existed)
                        "torch_compile", "gradient_checkpointing", "tf32", "feature_cache_mb"}


# pruning settings that must match for a run's masks to continue in another run
MASK_SCOPE_FIELDS = ("scope", "include_bias", "prune_feature_projection", "prune_feature_encoder", "prune_pos_conv")


def completed_run(source: Path, method: str, flag: str, record: RunRecord) -> Run:
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
    differing = [k for k in MASK_SCOPE_FIELDS if theirs.get(k) != ours.get(k)]
    if method != "none" and differing:
        raise ConfigError(f"{flag} {source}: it pruned with other settings ({', '.join(differing)})")
    return earlier


def load_weights(model_class, directory: Path) -> dict[str, torch.Tensor]:
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
                           if k not in NEUTRAL_TRAIN_FIELDS and value(a, k) != value(b, k))
        if differing:
            result[section] = differing
    return result
