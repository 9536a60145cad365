"""Kill ``parp finetune`` with SIGKILL mid-run, run the same command again: it resumes and ends at max_steps."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from helpers import sigkill_after_checkpoint

from parp.models import load_finetuned_model, tiny_ctc_model
from parp.records import phase_cost_seconds

pytestmark = pytest.mark.slow

MAX_STEPS = 30


def _mboshi_subset(mboshi_dir: Path, out: Path, n: int, max_seconds: float = 3.0) -> list[tuple[str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    with open(mboshi_dir / "train.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if float(r["duration"]) <= max_seconds][:n]
    clips = []
    for i, row in enumerate(rows):
        samples, rate = sf.read(str(mboshi_dir / row["path"]), dtype="float32")
        sf.write(str(out / f"u{i:03d}.wav"), samples, rate)
        clips.append((f"audio/u{i:03d}.wav", row["text"]))
    return clips


def _manifest(path: Path, rows) -> Path:
    path.write_text("path\ttext\n" + "".join(f"{a}\t{t}\n" for a, t in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(mboshi_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    clips = _mboshi_subset(mboshi_dir, root / "audio", 20)
    train = _manifest(root / "train.tsv", clips)
    valid = _manifest(root / "valid.tsv", clips[:3])
    model = root / "tiny"
    tiny_ctc_model("wav2vec2", seed=0).save_pretrained(model)
    return root, model, train, valid


def _command(model: Path, train: Path, valid: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "parp", "finetune", "--model", str(model), "--train-manifest", str(train),
            "--valid-manifest", str(valid), "--output-dir", str(out), "--max-steps", str(MAX_STEPS),
            "--save-every", "5", "--eval-every", "0", "--log-every", "5", "--warmup-steps", "3",
            "--learning-rate", "1e-3", "--max-batch-seconds", "8", "--seed", "3", "--no-progress"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


def _latest_step(out: Path) -> int:
    pointer = out / "checkpoints" / "latest"
    try:
        return int(pointer.read_text().strip().split("-")[-1])
    except (OSError, ValueError):
        return -1


def _run_killed_then_resumed(command: list[str], out: Path) -> tuple[int, subprocess.CompletedProcess]:
    """Run the command, SIGKILLed by itself right after its checkpoint of step 10, then run it again."""
    killed = subprocess.run(sigkill_after_checkpoint(10) + command[3:], capture_output=True, text=True, env=_env(),
                            timeout=300)  # command[3:]: the arguments after ``python -m parp``
    assert killed.returncode == -signal.SIGKILL, f"run was not killed (rc={killed.returncode}):\n{killed.stderr[-3000:]}"
    killed_at = _latest_step(out)
    assert killed_at == 10, f"killed at checkpoint step {killed_at}, not 10"
    assert not (out / "model").exists(), "the killed run must not have written its final model"
    second = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    return killed_at, second


def _final_loss(out: Path) -> float:
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    losses = [h for h in record["history"] if "loss" in h]
    assert losses[-1]["step"] == MAX_STEPS
    return losses[-1]["loss"]


@pytest.fixture(scope="module")
def killed_run(setup):
    root, model, train, valid = setup
    out = root / "killed"
    killed_at, second = _run_killed_then_resumed(_command(model, train, valid, out), out)
    return out, killed_at, second


def test_sigkill_then_rerun_resumes_and_finishes(killed_run):
    out, killed_at, second = killed_run
    assert "resuming from" in second.stdout + second.stderr
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "completed"
    phase = record["phases"][-1]
    assert phase["resumed_from_step"] >= 10
    assert phase["resumed_from_step"] <= killed_at  # never from a checkpoint newer than the pointer said
    assert phase["resumed_from_step"] + phase["steps"] == MAX_STEPS
    # the killed process's time up to its checkpoint is part of the run's cost, not lost from the record
    assert 0 < phase["earlier_wall_seconds"] and phase_cost_seconds(phase) > phase["wall_seconds"]
    state = json.loads((out / "checkpoints" / f"step-{MAX_STEPS}" / "trainer_state.json").read_text())
    assert state["wall_seconds"] > phase["earlier_wall_seconds"]
    assert state["step"] == MAX_STEPS
    assert (out / "checkpoints" / "latest").read_text().strip() == f"step-{MAX_STEPS}"
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == [f"step-{MAX_STEPS}"]
    loaded = load_finetuned_model(out / "model")
    assert loaded.config.vocab_size == record["data"]["vocabulary_size"]


def test_resumed_run_matches_uninterrupted_run(setup, killed_run):
    root, model, train, valid = setup
    resumed = killed_run[0]
    straight = root / "straight"
    full = subprocess.run(_command(model, train, valid, straight), capture_output=True, text=True, env=_env(),
                          timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]

    a = json.loads((straight / "run.json").read_text())
    b = json.loads((resumed / "run.json").read_text())
    assert a["phases"][-1]["steps"] == MAX_STEPS
    assert b["phases"][-1]["resumed_from_step"] + b["phases"][-1]["steps"] == MAX_STEPS
    # same seed, same data order after the skip, same RNG state: the losses agree
    loss_a = {h["step"]: h["loss"] for h in a["history"] if "loss" in h}
    loss_b = {h["step"]: h["loss"] for h in b["history"] if "loss" in h}
    assert sorted(loss_a) == sorted(loss_b) == list(range(5, MAX_STEPS + 1, 5))
    for step in loss_a:
        assert loss_b[step] == pytest.approx(loss_a[step], rel=2e-3, abs=1e-3), (step, loss_a, loss_b)
    assert _final_loss(resumed) == pytest.approx(_final_loss(straight), rel=2e-3, abs=1e-3)
