"""``torchrun --nproc_per_node 2 -m parp finetune`` on CPU (gloo): one process group, two ranks, one model."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest
import soundfile as sf

from parp.models import load_finetuned_model, tiny_ctc_model


@pytest.mark.slow
def test_torchrun_two_cpu_processes(mboshi_dir, tmp_path):
    train = _tiny_corpus(mboshi_dir, tmp_path, n=16)
    valid = tmp_path / "valid.tsv"
    valid.write_text("\n".join(train.read_text(encoding="utf-8").splitlines()[:6]) + "\n", encoding="utf-8")
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
    assert (checkpoint / "rng_state_0.json").exists() and (checkpoint / "rng_state_1.json").exists()
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


@pytest.mark.slow
def test_torchrun_two_cpu_processes_sweep(tmp_path):
    """Rank 0 claims each cell and broadcasts it; both ranks train it together; only rank 0 writes the results."""
    import yaml
    from helpers import synthetic_corpus, tiny_model_dir

    from parp.experiments.grid import SweepConfig
    from parp.experiments.sweep import run_sweep
    from parp.results import read_results

    manifest = synthetic_corpus(tmp_path / "corpus", n=12)
    model = tiny_model_dir(tmp_path / "model")
    values = dict(languages=[f"xx={manifest}"], methods=["parp"], sparsities=[0.5], model=str(model),
                  mask_time_prob=0.0, max_steps=2, learning_rate=5e-2, warmup_steps=0, eval_every=0, save_every=0,
                  max_batch_seconds=4, valid_fraction=0.25, prune_every=1, progress=False)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({**values, "output_dir": str(tmp_path / "ddp")}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "parp", "sweep", "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**env, "OMP_NUM_THREADS": "1"})
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]

    out = tmp_path / "ddp"
    ran = [line.split(": running")[0].split("] ")[1] for line in done.stdout.splitlines() if ": running" in line]
    assert sorted(ran) == ["xx none s=0 seed=0", "xx parp s=0.5 seed=0"], log[-4000:]  # each cell once, by rank 0
    assert done.stdout.count("result rows in") == 1 and "under torchrun" not in log
    for cell in ("none/s0", "parp/s0.5"):
        folder = out / "cells" / "xx" / cell / "seed0"
        main, other = (json.loads((folder / n).read_text(encoding="utf-8")) for n in ("run.json", "run.rank1.json"))
        assert main["status"] == other["status"] == "completed"
        # both ranks trained this cell in one process group, and only rank 0 exported it
        assert [p["processes"] for p in main["phases"] if "processes" in p] == [2]
        assert main["metrics"]["sizes"] and other["metrics"]["sizes"] == {}
        assert main["metrics"]["mask_sparsity"] == other["metrics"]["mask_sparsity"]
        assert not (folder / "claimed.pid").exists()
    assert not list(out.rglob("*.tmp"))

    single = run_sweep(SweepConfig(**values, output_dir=str(tmp_path / "one")))
    rows = read_results(out / "results.csv")
    cells = sorted((r["cell"], r["method"], r["sparsity_target"]) for r in rows)
    assert cells == sorted((r["cell"], r["method"], r["sparsity_target"]) for r in single) and len(rows) == 2
    assert {r["method"]: r["sparsity_achieved"] for r in rows} == \
        pytest.approx({r["method"]: r["sparsity_achieved"] for r in single}, abs=1e-6)

    # rank 0's refusal (finished cells ran with another schedule) reaches rank 1 too: both exit, neither hangs.
    # Guaranteed: the launch fails within the timeout with rank 0's line and no other error. Rank 1 prints the
    # same line when it gets there first; under load torchrun may stop it as soon as rank 0 has exited.
    config.write_text(yaml.safe_dump({**values, "max_steps": 3, "output_dir": str(out)}))
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**env, "OMP_NUM_THREADS": "1"})
    errors = [line for line in refused.stderr.splitlines() if line.startswith("parp: error:")]
    assert refused.returncode != 0 and 1 <= len(errors) <= 2, refused.stderr[-3000:]
    assert all("ran with other settings" in line for line in errors)
    assert not re.search(r'File "[^"]*/parp/', refused.stderr)  # one line per rank, no traceback from parp's code


def test_multilingual_sweep_under_torchrun_is_one_clear_error(monkeypatch):
    from parp.errors import ConfigError
    from parp.experiments.grid import SweepConfig
    from parp.experiments.sweep import run_sweep

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="multilingual: true is not run under torchrun"):
        run_sweep(SweepConfig(languages=["a=x.tsv", "b=y.tsv"], multilingual=True))


def test_from_main_decides_on_rank_0_only_and_shares_its_error(monkeypatch):
    """Rank 1 never claims (never runs ``decide``): it takes rank 0's pick, or raises rank 0's error line."""
    from parp.errors import ConfigError, ParpError
    from parp.experiments import ranks
    from parp.experiments.ranks import from_main

    sent = []

    def broadcast(objects, from_process=0):
        sent.append(list(objects))
        return reply

    monkeypatch.setattr(ranks, "broadcast_object_list", broadcast)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    calls = []
    reply = [(3, None), None]
    assert from_main(lambda: calls.append("claimed")) == (3, None) and calls == []
    reply = [None, "cells/xx: ran with other settings"]
    with pytest.raises(ParpError, match="ran with other settings"):
        from_main(lambda: calls.append("claimed"))
    assert calls == []

    monkeypatch.setenv("RANK", "0")

    def refuse():
        raise ConfigError("cells/xx: ran with other settings")

    reply = [None, "cells/xx: ran with other settings"]
    with pytest.raises(ConfigError):  # rank 0 keeps its own error class
        from_main(refuse)
    assert sent[-1] == [None, "cells/xx: ran with other settings"]  # ... and sent its line to the others
