"""Issue 31: the hostile-input probe as a suite. Nothing lost, nothing hangs, one line per bad input.

Grouped by the probe's families: output folders and locks, manifests and flags, models and masks, resume and
faults, sweeps, evaluate / transcribe / report / synth. The slow ones (real kills, several processes) are
marked slow and kept to a few updates of a tiny model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import sigkill_after_checkpoint, synthetic_corpus, tiny_model_dir

from parp.cli import main
from parp.sparsity import Mask


def _one_line(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("parp: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return synthetic_corpus(root / "data", n=10), tiny_model_dir(root / "model")


def _finetune(data, out, *extra) -> list[str]:
    manifest, model = data
    return ["finetune", "--model", str(model), "--train-manifest", str(manifest), "--output-dir", str(out),
            "--max-steps", "1", "--save-every", "0", "--eval-every", "0", "--warmup-steps", "0", "--no-progress",
            "--max-batch-seconds", "3", "--mask-time-prob", "0", "--allow-unknown-chars", *extra]


def _prune(data, out, *extra) -> list[str]:
    manifest, model = data
    return ["prune", "--method", "parp", "--sparsity", "0.5", "--prune-every", "1", "--model", str(model),
            "--train-manifest", str(manifest), "--output-dir", str(out), "--max-steps", "2", "--save-every", "0",
            "--eval-every", "0", "--warmup-steps", "0", "--no-progress", "--max-batch-seconds", "3",
            "--mask-time-prob", "0", "--allow-unknown-chars", *extra]


@pytest.fixture(scope="module")
def finetuned(data, tmp_path_factory):
    """A finished one-step fine-tune: its model folder (with vocab.json) for evaluate / transcribe."""
    out = tmp_path_factory.mktemp("finetuned") / "run"
    assert main(_finetune(data, out)) == 0
    return out / "model"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ output folders and locks


def _users_folder(root: Path, data) -> Path:
    """A folder as a user has it: manifest, audio, notes, an old run.json and another finished run's folder."""
    manifest, _ = data
    folder = root / "work"
    shutil.copytree(manifest.parent, folder)
    (folder / "notes.txt").write_text("my notes")
    (folder / "run.json").write_text(json.dumps({"command": "finetune", "status": "completed", "arguments": {}}))
    (folder / "other-run").mkdir()
    (folder / "other-run" / "run.json").write_text(json.dumps({"command": "prune", "status": "completed"}))
    return folder


@pytest.mark.parametrize("output_dir", ["", ".", "..", "~", "/", "HERE", "AUDIO"])
def test_overwrite_of_a_folder_holding_the_users_files_is_refused_before_anything_is_touched(
        data, tmp_path, capsys, monkeypatch, output_dir):
    folder = _users_folder(tmp_path, data)
    monkeypatch.chdir(folder)
    before = _tree(folder)
    target = {"HERE": str(folder), "AUDIO": str(folder / "audio")}.get(output_dir, output_dir)
    manifest = folder / "train.tsv"
    assert main(_finetune((manifest, data[1]), target, "--overwrite-output-dir")) == 2
    line = _one_line(capsys, "--output-dir")
    assert "refused" in line or "empty" in line
    assert _tree(folder) == before


def test_overwrite_deletes_only_what_parp_wrote(data, tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(_finetune(data, folder, "--save-every", "1")) == 0
    (folder / "notes.txt").write_text("my notes")
    (folder / "other-run").mkdir()
    (folder / "other-run" / "run.json").write_text("{}")
    (folder / "finetune-2").mkdir()  # a phase folder's name, but another run's folder: kept
    (folder / "finetune-2" / "run.json").write_text("{}")
    first = json.loads((folder / "run.json").read_text())
    assert main(_finetune(data, folder, "--overwrite-output-dir", "--seed", "7")) == 0
    assert (folder / "notes.txt").read_text() == "my notes"
    assert (folder / "other-run" / "run.json").exists() and (folder / "finetune-2" / "run.json").exists()
    again = json.loads((folder / "run.json").read_text())
    assert again["arguments"]["train"]["seed"] == 7 and again["started_at"] >= first["started_at"]
    assert not (folder / "checkpoints").exists()  # the old run's checkpoints went with it (this run keeps none)


def test_a_second_process_on_a_live_runs_folder_is_refused_and_a_dead_owners_lock_taken_over(data, tmp_path,
                                                                                            capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from parp.training.output_lock import acquire_output_lock; "
                               f"acquire_output_lock({str(folder)!r}); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(_finetune(data, folder, "--learning-rate", "1e-3")) == 2
        _one_line(capsys, str(folder), f"PID {holder.pid}", "is writing a run there now")
        assert not (folder / "run.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(_finetune(data, folder, "--learning-rate", "1e-3")) == 0  # the kernel dropped the dead owner's lock
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"


# ------------------------------------------------------------------------------------- flags and configs


def test_values_that_cannot_be_right_are_refused_up_front(finetuned, data, tmp_path, capsys):
    manifest, _ = data
    for bad in ("0", "-3"):
        assert main(["evaluate", "--model", str(finetuned), "--manifest", str(manifest), "--max-utterances", bad,
                     "--output-dir", str(tmp_path / "e"), "--no-progress"]) == 2
        _one_line(capsys, "--max-utterances")
    assert not (tmp_path / "e").exists()
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    assert "final re-prune only" in " ".join(capsys.readouterr().out.split())


# --------------------------------------------------------------------------------------- models and masks


def test_a_model_folder_whose_only_weights_are_a_pickle_is_refused_not_unpickled(data, finetuned, tmp_path,
                                                                                  capsys):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for source, name in ((data[1], "encoder"), (finetuned, "finetuned")):
        folder = tmp_path / name
        shutil.copytree(source, folder)
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    manifest = data[0]
    assert main(_finetune((manifest, tmp_path / "encoder"), tmp_path / "o")) == 2
    _one_line(capsys, "encoder", "pickled", "safetensors")
    assert main(["evaluate", "--model", str(tmp_path / "finetuned"), "--manifest", str(manifest)]) == 2
    _one_line(capsys, "finetuned", "safetensors")
    assert main(["transcribe", str(tmp_path / "finetuned"), str(manifest.parent / "audio" / "u0.wav")]) == 2
    _one_line(capsys, "finetuned", "safetensors")
    assert not marker.exists()


def test_masks_compare_of_a_mask_with_itself_shows_iou_1(tmp_path, capsys):
    import torch

    path = Mask.magnitude({"a.weight": torch.randn(8, 8)}, 0.5).save(tmp_path / "m.safetensors")
    assert main(["masks", "compare", str(path), str(path), "--json", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["pairs"][0]["overall"]["iou"] == 1.0 and result["iou_matrix"] == [[1.0, 1.0], [1.0, 1.0]]
    assert " 1.0000" in capsys.readouterr().out


# -------------------------------------------------------------------------------------- resume and faults


@pytest.mark.parametrize("command", ["finetune", "prune"])
@pytest.mark.parametrize("checkpoints", ["never saved", "deleted"])
def test_a_finished_run_is_compared_with_the_new_command_like_a_checkpointed_one(data, tmp_path, capsys, command,
                                                                                checkpoints):
    argv = _finetune if command == "finetune" else _prune
    folder = tmp_path / "run"
    save = ["--save-every", "1"] if checkpoints == "deleted" else []
    assert main(argv(data, folder, *save)) == 0
    if checkpoints == "deleted":
        shutil.rmtree(folder / ("checkpoints" if command == "finetune" else "finetune/checkpoints"))
    assert not list(folder.rglob("checkpoints/latest"))
    before = _tree(folder)
    capsys.readouterr()

    assert main(argv(data, folder, *save, "--learning-rate", "1e-3", "--seed", "5")) == 2
    _one_line(capsys, "a completed run with other settings", "--learning-rate", "--seed 0 -> 5",
              "--overwrite-output-dir")
    assert _tree(folder) == before

    assert main(argv(data, folder, *save, "--log-every", "7")) == 0  # only how it is watched differs
    assert "already completed" in capsys.readouterr().err
    assert _tree(folder) == before  # nothing rerun, nothing rewritten


@pytest.fixture(scope="module")
def checkpointed(data, tmp_path_factory):
    """A PARP run whose final checkpoint is written (hooks.safetensors included) and whose record says it was
    killed right after: rerunning the command resumes from that checkpoint."""
    folder = tmp_path_factory.mktemp("checkpointed") / "run"
    assert main(_prune(data, folder, "--save-every", "1")) == 0
    record = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**record, "status": "running"}))
    return folder


def _damaged_copy(checkpointed: Path, tmp_path: Path, damage) -> tuple[Path, Path]:
    folder = tmp_path / "run"
    shutil.copytree(checkpointed, folder)
    step = folder / "finetune" / "checkpoints" / (folder / "finetune" / "checkpoints" / "latest").read_text()
    damage(step)
    return folder, step


@pytest.mark.parametrize("case", ["garbage trainer_state", "trainer_state missing a key", "rng_state structure",
                                  "truncated hooks"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file_and_how_to_go_on(data, checkpointed, tmp_path, capsys,
                                                                          case):
    def damage(step: Path) -> None:
        if case == "garbage trainer_state":
            (step / "trainer_state.json").write_bytes(b"\x00\xff garbage {")
        elif case == "trainer_state missing a key":
            state = json.loads((step / "trainer_state.json").read_text())
            del state["epoch"]
            (step / "trainer_state.json").write_text(json.dumps(state))
        elif case == "rng_state structure":
            (step / "rng_state_0.json").write_text(json.dumps({"python": [1, 2], "numpy": "x", "torch": {}}))
        else:
            hooks = step / "hooks.safetensors"
            hooks.write_bytes(hooks.read_bytes()[: hooks.stat().st_size // 2])

    folder, step = _damaged_copy(checkpointed, tmp_path, damage)
    name = {"garbage trainer_state": "trainer_state.json", "trainer_state missing a key": "trainer_state.json",
            "rng_state structure": "rng_state_0.json", "truncated hooks": "hooks.safetensors"}[case]
    assert main(_prune(data, folder, "--save-every", "1")) == 2
    line = _one_line(capsys, str(step / name), "damaged checkpoint")
    assert "--overwrite-output-dir" in line and f"delete {folder / 'finetune' / 'checkpoints'}" in line
    if case == "trainer_state missing a key":
        assert "missing epoch" in line


def test_disk_full_while_saving_names_the_folder_and_keeps_the_last_good_checkpoint(data, tmp_path, capsys,
                                                                                    monkeypatch):
    import parp.training.checkpoint as checkpoint

    real, calls = checkpoint.save_file, []

    def full_on_the_second_checkpoint(tensors, path, *a, **k):
        calls.append(path)
        if "step-2" in path:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(checkpoint, "save_file", full_on_the_second_checkpoint)
    folder = tmp_path / "run"
    assert main(_finetune(data, folder, "--save-every", "1", "--max-steps", "3")) == 2
    _one_line(capsys, str(folder / "checkpoints" / "step-2"), "disk full", "MB", "step-1", "resume")
    assert (folder / "checkpoints" / "latest").read_text() == "step-1"
    assert not (folder / "checkpoints" / "step-2").exists()  # the partial checkpoint went

    monkeypatch.setattr(checkpoint, "save_file", real)
    assert main(_finetune(data, folder, "--save-every", "1", "--max-steps", "3")) == 0  # space freed: resumes
    assert "resuming from" in capsys.readouterr().out
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["phases"][-1]["resumed_from_step"] == 1


# ------------------------------------------------------------------------------------------------- sweeps


def _sweep_config(data, out: Path, **extra):
    from parp.experiments.grid import SweepConfig

    manifest, model = data
    return SweepConfig(**{**dict(languages=[f"xx={manifest}"], methods=["parp"], sparsities=[0.5],
                                 model=str(model), mask_time_prob=0.0, max_steps=2, learning_rate=5e-2,
                                 warmup_steps=0, eval_every=0, save_every=0, max_batch_seconds=3,
                                 valid_fraction=0.2, prune_every=1, progress=False, allow_unknown_chars=True,
                                 output_dir=str(out)), **extra})


def _plant_claim(cell: Path, text: str | bytes, age: float) -> Path:
    cell.mkdir(parents=True, exist_ok=True)
    claim = cell / "claimed.pid"
    claim.write_bytes(text if isinstance(text, bytes) else text.encode())
    stamp = claim.stat().st_mtime - age
    os.utime(claim, (stamp, stamp))
    return claim


@pytest.mark.slow
def test_claims_of_another_host_or_garbage_are_taken_over_after_missed_beats_and_every_cell_runs_once(
        data, tmp_path, capsys, monkeypatch):
    from parp.experiments import claims
    from parp.experiments.cells import Cell
    from parp.experiments.sweep import run_sweep
    from parp.results import read_results

    out = tmp_path / "sweep"
    config = _sweep_config(data, out, sparsities=[0.3, 0.5])
    elsewhere = json.dumps({"pid": os.getpid(), "host": socket.gethostname() + "-copied", "start": "1"})
    _plant_claim(Cell("xx", "none", 0.0, 0).directory(out), elsewhere, age=claims.STALE_AFTER_SECONDS + 1)
    _plant_claim(Cell("xx", "parp", 0.3, 0).directory(out), b"\x00\x13garbage", age=claims.STALE_AFTER_SECONDS + 1)
    # a claim from another host that is still fresh: waited for, then taken over once it misses its beats
    monkeypatch.setattr(claims, "STALE_AFTER_SECONDS", 2.0)
    _plant_claim(Cell("xx", "parp", 0.5, 0).directory(out), elsewhere, age=0)
    rows = run_sweep(config, poll_seconds=0.2)
    ran = [line for line in capsys.readouterr().out.splitlines() if ": running" in line]
    assert len(ran) == 3 and len(set(ran)) == 3  # each cell exactly once
    assert len(rows) == 3 and len(read_results(out / "results.csv")) == 3
    assert not list(out.glob("cells/**/claimed.pid"))


def test_the_claim_heartbeat_refreshes_the_owners_claim_only(tmp_path):
    import time

    from parp.experiments.claims import claim_cell, claim_heartbeat

    cell = tmp_path / "cell"
    assert claim_cell(cell)
    claim = cell / "claimed.pid"
    old = claim.stat().st_mtime - 1000
    os.utime(claim, (old, old))
    with claim_heartbeat(cell, every=0.01):
        deadline = time.time() + 30
        while claim.stat().st_mtime == old and time.time() < deadline:
            time.sleep(0.01)
    assert claim.stat().st_mtime > old + 900
    other = json.dumps({"pid": 1, "host": "elsewhere"})  # taken over by another worker: not ours to keep alive
    claim.write_text(other)
    os.utime(claim, (old, old))
    with claim_heartbeat(cell, every=0.01):
        time.sleep(0.2)
    assert claim.stat().st_mtime == old and claim.read_text() == other


@pytest.mark.slow
def test_a_sweep_worker_killed_mid_cell_is_taken_over_and_its_cell_resumed(data, tmp_path, capsys):
    import yaml

    from parp.experiments.cells import Cell
    from parp.experiments.sweep import run_sweep
    from parp.results import read_results

    out = tmp_path / "sweep"
    config = _sweep_config(data, out, max_steps=3, save_every=1)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in config.__dict__.items() if v is not None}))
    worker = subprocess.Popen([*sigkill_after_checkpoint(1), "sweep", "--config", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)})
    log = worker.communicate(timeout=300)[0]
    assert worker.returncode == -signal.SIGKILL, log[-3000:]
    first = Cell("xx", "none", 0.0, 0).directory(out)
    assert json.loads((first / "claimed.pid").read_text())["pid"] == worker.pid  # the dead worker's claim is left
    assert (first / "checkpoints" / "latest").exists() or (first / "finetune" / "checkpoints" / "latest").exists()

    rows = run_sweep(config, poll_seconds=0.2)
    ran = [line for line in capsys.readouterr().out.splitlines() if ": running" in line]
    assert len(ran) == 2 and len(rows) == 2 and len(read_results(out / "results.csv")) == 2
    record = json.loads((first / "run.json").read_text())
    assert record["status"] == "completed" and record["phases"][0]["resumed_from_step"] == 1
    assert not list(out.glob("cells/**/claimed.pid"))


# ------------------------------------------------------------------------- evaluate, transcribe, report, synth


def test_evaluate_with_no_usable_utterance_fails_with_one_line(finetuned, tmp_path, capsys):
    (tmp_path / "bad.wav").write_bytes(b"RIFF not audio")
    sf.write(tmp_path / "tiny.wav", np.zeros(100, dtype=np.float32), 16000)  # shorter than the CNN's field
    manifest = tmp_path / "test.tsv"
    manifest.write_text("path\ttext\nbad.wav\tba\ntiny.wav\tko\nmissing.wav\tmi\n")
    assert main(["evaluate", "--model", str(finetuned), "--manifest", str(manifest), "--output-dir",
                 str(tmp_path / "e"), "--no-progress"]) == 2
    _one_line(capsys, "test.tsv", "no usable utterance", "3 skipped")
    assert not (tmp_path / "e" / "metrics.json").exists()


def test_transcribe_tells_the_truth_in_its_exit_code(finetuned, data, tmp_path, capsys):
    good = data[0].parent / "audio" / "u0.wav"
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, dtype=np.float32), 16000)
    assert main(["transcribe", str(finetuned), str(tmp_path)]) == 2  # a folder
    _one_line(capsys, str(tmp_path), "a folder")
    assert main(["transcribe", str(finetuned), str(tmp_path / "no.wav"), str(tmp_path / "nothing.wav")]) == 2
    _one_line(capsys, "none could be transcribed")
    # a clip shorter than the receptive field is skipped and counted, the others transcribed
    assert main(["transcribe", str(finetuned), str(short), str(good)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{short}\t<error: too short") and lines[1].startswith(f"{good}\t")
    assert "1 of 2 file(s) could not be transcribed" in captured.err and "Traceback" not in captured.err


def test_report_on_a_binary_results_csv_is_one_line(tmp_path, capsys):
    results = tmp_path / "results.csv"
    results.write_bytes(bytes(range(256)) * 4)
    assert main(["report", "--results", str(results), "--output-dir", str(tmp_path / "r")]) == 2
    _one_line(capsys, str(results), "not a results table")
    results.write_text("name,value\na,1\n")  # text, but not a sweep's table
    assert main(["report", "--results", str(results), "--output-dir", str(tmp_path / "r")]) == 2
    _one_line(capsys, str(results), "not a results table")


def test_synth_that_produced_nothing_fails_with_one_line(tmp_path, capsys, monkeypatch):
    import parp.synth.corpus as corpus

    class Silent(corpus.ESpeakSynthesizer):
        def synthesize(self, *args, **kwargs):
            return np.zeros(1600, dtype=np.float32), 16000

    monkeypatch.setattr(corpus, "ESpeakSynthesizer", Silent)
    assert main(["synth", "--out-dir", str(tmp_path / "s"), "--languages", "fi", "--utterances-per-language", "2",
                 "--no-progress"]) == 2
    _one_line(capsys, "no speech")
    assert not (tmp_path / "s" / "synth.json").exists()
