"""The loop's own options: a wall-clock budget ends a run cleanly, like reaching max_steps."""

from __future__ import annotations

import json

from helpers import synthetic_corpus, tiny_model_dir

from parp.training.finetune import DataArguments, ModelArguments, run_finetune
from parp.training.loop import TrainConfig


def test_max_minutes_stops_early_and_still_exports(tmp_path):
    manifest = synthetic_corpus(tmp_path / "data", n=12)
    model_dir = tiny_model_dir(tmp_path / "model")
    result = run_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                          ModelArguments(model=str(model_dir), mask_time_prob=0.0),
                          TrainConfig(output_dir=str(tmp_path / "run"), max_steps=10_000, max_minutes=1e-4,
                                      warmup_steps=0, eval_every=0, save_every=0, progress=False))
    assert 1 <= result.train.steps < 10_000
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    record = json.loads(result.record_path.read_text())
    assert record["status"] == "completed" and record["metrics"]["final"]["cer"] >= 0
