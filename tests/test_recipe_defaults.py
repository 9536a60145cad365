"""The fine-tuning recipe chosen by the results issue's search is what `parp finetune | prune | sweep` default to,
and exactly what docs/results/recipe/README.md names (its table between the recipe-defaults markers)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from parp.experiments.grid import SweepConfig
from parp.methods import PruneArguments
from parp.models import ModelArguments
from parp.training.loop import TrainConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "results" / "recipe" / "README.md"


def _documented() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- recipe-defaults -->")[1].split("<!-- /recipe-defaults -->")[0]
    return dict(re.findall(r"^\| `--(\w+)` \| `([^`]+)` \|", block, flags=re.M))


def _defaults(*classes) -> dict[str, object]:
    return {f.name: f.default for cls in classes for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


def test_the_documented_recipe_is_the_default_of_every_command():
    documented = _documented()
    assert {"max_steps", "learning_rate", "lr_schedule", "warmup_steps", "max_batch_seconds",
            "mask_time_prob", "prune_every"} <= set(documented)
    single = _defaults(TrainConfig, ModelArguments, PruneArguments)  # parp finetune / parp prune
    sweep = _defaults(SweepConfig)
    for name, value in documented.items():
        assert str(single[name]) == value, f"--{name}: parp finetune/prune default {single[name]!r}, doc {value}"
        assert str(sweep[name]) == value, f"--{name}: parp sweep default {sweep[name]!r}, doc {value}"
