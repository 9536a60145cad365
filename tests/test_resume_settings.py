"""A resume with settings that change the result is refused with one line naming them; harmless ones are
allowed and recorded; ``--overwrite-output-dir`` starts over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import synthetic_corpus, tiny_model_dir

from parp.cli import main
from parp.data import DataArguments
from parp.methods import PruneArguments
from parp.models import ModelArguments
from parp.records import RunRecord
from parp.training.loop import TrainConfig


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("parp: error: ") and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("settings")
    return synthetic_corpus(root / "data", n=10), tiny_model_dir(root / "model")


def _finetune_argv(data, out: Path, *extra: str) -> list[str]:
    manifest, model = data
    return ["finetune", "--model", str(model), "--train-manifest", str(manifest), "--valid-fraction", "0.2",
            "--output-dir", str(out), "--max-steps", "2", "--save-every", "1", "--eval-every", "0",
            "--warmup-steps", "0", "--max-batch-seconds", "3", "--mask-time-prob", "0", "--no-progress", *extra]


def test_changed_settings_refused_harmless_recorded_overwrite_restarts(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_finetune_argv(data, out, "--learning-rate", "1e-3", "--seed", "1")) == 0
    first = json.loads((out / "run.json").read_text())
    assert first["status"] == "completed"
    capsys.readouterr()

    # learning rate, seed, held-out split and batch size changed: refused, naming each, before any compute
    assert main(_finetune_argv(data, out, "--learning-rate", "2e-3", "--seed", "2", "--valid-fraction", "0.3",
                               "--max-batch-seconds", "4")) == 2
    line = _one_line(capsys)
    for named in ("--learning-rate 0.001 -> 0.002", "--seed 1 -> 2", "--valid-fraction", "--max-batch-seconds",
                  "--overwrite-output-dir"):
        assert named in line, (named, line)
    assert json.loads((out / "run.json").read_text()) == first  # the stored run is untouched

    # the same settings (harmless ones may differ) on the completed run: already completed, nothing rerun
    assert main(_finetune_argv(data, out, "--learning-rate", "1e-3", "--seed", "1", "--log-every", "3")) == 0
    assert "already completed" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text()) == first

    # harmless: progress, eval/log/save frequency, workers -> a killed run (its last checkpoint written) resumes
    # and records what changed
    (out / "run.json").write_text(json.dumps({**first, "status": "running"}))
    assert main(_finetune_argv(data, out, "--learning-rate", "1e-3", "--seed", "1", "--log-every", "3",
                               "--eval-every", "5")) == 0
    again = json.loads((out / "run.json").read_text())
    assert again["status"] == "completed"
    assert again["changed_on_resume"] == {"eval_every": [0, 5], "log_every": [10, 3]}
    assert again["phases"][-1]["resumed_from_step"] == 2

    # the way out: start over
    assert main(_finetune_argv(data, out, "--learning-rate", "2e-3", "--seed", "2", "--overwrite-output-dir")) == 0
    fresh = json.loads((out / "run.json").read_text())
    assert fresh["phases"][-1]["resumed_from_step"] == 0 and fresh["arguments"]["train"]["seed"] == 2
    assert "changed_on_resume" not in fresh


def _planted_prune_run(out: Path, data, sparsity: float) -> None:
    """A killed ``parp prune`` run's folder: its record and a checkpoint pointer (what a resume would use)."""
    manifest, model = data
    arguments = {"prune": PruneArguments(method="parp", sparsity=sparsity),
                 "data": DataArguments(train_manifest=str(manifest)), "model": ModelArguments(model=str(model)),
                 "train": TrainConfig(output_dir=str(out))}
    RunRecord(out / "run.json", "prune", arguments).write()
    (out / "finetune" / "checkpoints").mkdir(parents=True)
    (out / "finetune" / "checkpoints" / "latest").write_text("step-5")


def test_prune_with_another_sparsity_is_refused_before_any_work(data, tmp_path, capsys):
    manifest, model = data
    out = tmp_path / "parp"
    _planted_prune_run(out, data, 0.5)
    rc = main(["prune", "--method", "parp", "--sparsity", "0.9", "--model", str(model), "--train-manifest",
               str(manifest), "--output-dir", str(out)])
    assert rc == 2
    assert "--sparsity 0.5 -> 0.9" in _one_line(capsys)


def test_another_command_in_a_run_folder_is_refused(data, tmp_path, capsys):
    out = tmp_path / "parp"
    _planted_prune_run(out, data, 0.5)
    assert main(_finetune_argv(data, out)) == 2
    assert "'parp prune' run" in _one_line(capsys)


def test_checkpoint_from_other_settings_refused_by_the_loop_itself(tmp_path):
    """Library users calling ``train`` directly get the same refusal (the checkpoint stores its schedule)."""
    from parp.errors import ConfigError
    from parp.training.finetune import prepare_finetune
    from parp.training.loop import train

    manifest = synthetic_corpus(tmp_path / "d", n=10)
    setup = prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.2),
                             ModelArguments(model=str(tiny_model_dir(tmp_path / "m")), mask_time_prob=0.0),
                             progress=False)
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=1, save_every=1, eval_every=0,
                         warmup_steps=0, max_batch_seconds=3, progress=False, learning_rate=1e-4)
    train(setup.new_model(), setup.train_set, None, config, setup.objective)
    changed = TrainConfig(**{**config.__dict__, "max_steps": 3, "learning_rate": 5e-4})
    with pytest.raises(ConfigError, match=r"--learning-rate 0.0001 -> 0.0005.*--max-steps 1 -> 3"):
        train(setup.new_model(), setup.train_set, None, changed, setup.objective)
