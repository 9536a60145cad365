"""``torchrun --nproc_per_node 2 -m parp finetune`` on CPU (gloo): one process group, two ranks, one model."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from parp.models import load_finetuned_model, tiny_ctc_model


@pytest.mark.slow
def test_torchrun_two_cpu_processes(mboshi_dir, tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    with open(mboshi_dir / "train.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if float(r["duration"]) <= 3.0][:16]
    lines = ["path\ttext"]
    for i, row in enumerate(rows):
        samples, rate = sf.read(str(mboshi_dir / row["path"]), dtype="float32")
        sf.write(str(audio / f"u{i:02d}.wav"), samples, rate)
        lines.append(f"audio/u{i:02d}.wav\t{row['text']}")
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    valid = tmp_path / "valid.tsv"
    valid.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    model = tmp_path / "tiny"
    tiny_ctc_model("wav2vec2", seed=0).save_pretrained(model)
    out = tmp_path / "run"

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "parp", "finetune", "--model", str(model), "--train-manifest", str(train),
               "--valid-manifest", str(valid), "--output-dir", str(out), "--max-steps", "6", "--save-every", "3",
               "--eval-every", "3", "--log-every", "2", "--max-batch-seconds", "8", "--learning-rate", "1e-3",
               "--warmup-steps", "1", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    records = [json.loads((out / name).read_text(encoding="utf-8")) for name in ("run.json", "run.rank1.json")]
    for record in records:
        assert record["status"] == "completed"
        phase = record["phases"][-1]
        assert phase["processes"] == 2, "the two processes did not form one process group"
        assert phase["steps"] == 6
    # the training loss is reduced across ranks: both ranks log the same numbers
    losses = [[h["loss"] for h in r["history"] if "loss" in h] for r in records]
    assert losses[0] == losses[1] and len(losses[0]) == 3
    # every rank saved its RNG state into the one checkpoint
    checkpoint = out / "checkpoints" / "step-6"
    assert (checkpoint / "random_states_0.pkl").exists() and (checkpoint / "random_states_1.pkl").exists()
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-6"
    loaded = load_finetuned_model(out / "model")
    assert loaded.config.vocab_size == records[0]["data"]["vocabulary_size"]


def _tiny_corpus(mboshi_dir, tmp_path, n=12):
    audio = tmp_path / "audio"
    audio.mkdir()
    with open(mboshi_dir / "train.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if float(r["duration"]) <= 3.0][:n]
    lines = ["path\ttext"]
    for i, row in enumerate(rows):
        samples, rate = sf.read(str(mboshi_dir / row["path"]), dtype="float32")
        sf.write(str(audio / f"u{i:02d}.wav"), samples, rate)
        lines.append(f"audio/u{i:02d}.wav\t{row['text']}")
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return train


@pytest.mark.slow
def test_torchrun_two_cpu_processes_prune(mboshi_dir, tmp_path):
    """Only rank 0 writes run.json and the exports (every rank used to: a race on run.json.tmp)."""
    train = _tiny_corpus(mboshi_dir, tmp_path)
    model = tmp_path / "tiny"
    tiny_ctc_model("wav2vec2", seed=0).save_pretrained(model)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "parp", "prune", "--method", "parp", "--sparsity", "0.5", "--prune-every", "2",
               "--model", str(model), "--train-manifest", str(train), "--valid-fraction", "0.25",
               "--output-dir", str(out), "--max-steps", "4", "--save-every", "2", "--eval-every", "0",
               "--max-batch-seconds", "8", "--warmup-steps", "1", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    main, other = (json.loads((out / n).read_text(encoding="utf-8")) for n in ("run.json", "run.rank1.json"))
    assert main["status"] == other["status"] == "completed"
    assert main["metrics"]["sizes"] and other["metrics"]["sizes"] == {}  # only rank 0 exported
    assert main["metrics"]["mask_sparsity"] == other["metrics"]["mask_sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert not list(out.glob("*.tmp")) and (out / "model.sparse.safetensors").is_file()
    from parp.sparsity import measure_sparsity

    loaded = load_finetuned_model(out / "model")
    assert measure_sparsity(loaded).overall == pytest.approx(0.5, abs=1e-6)


def test_sweep_under_torchrun_is_one_clear_error(monkeypatch):
    from parp.errors import ConfigError
    from parp.experiments.sweep import SweepConfig, run_sweep

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="torchrun"):
        run_sweep(SweepConfig())
