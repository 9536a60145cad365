"""Faults that only show when audio is decoded (truncated FLAC, NaN samples) are skipped and counted in training,
evaluation and transcription; non-finite loss or weights stop a run with one line naming the step."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import synthetic_corpus, tiny_model_dir

from parp.cli import main
from parp.data import DataArguments
from parp.data.audio import load_audio
from parp.data.batching import CTCCollator
from parp.errors import AudioError, TrainingError
from parp.evaluation.evaluate import EvaluateArguments, run_evaluate
from parp.models import ModelArguments
from parp.training.finetune import prepare_finetune, run_finetune
from parp.training.loop import TrainConfig, train


def _truncated_flac(path: Path, seconds: float = 1.0) -> Path:
    """A FLAC cut to half its bytes: the header (and so validation) still reads, decoding fails."""
    samples = (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(np.float32)
    sf.write(str(path), samples, 16000)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    return path


def _nan_wav(path: Path, seconds: float = 1.0, n_nan: int = 100) -> Path:
    samples = (0.1 * np.random.default_rng(1).standard_normal(int(16000 * seconds))).astype(np.float32)
    samples[1000:1000 + n_nan] = np.nan
    sf.write(str(path), samples, 16000, subtype="FLOAT")
    return path


def _corpus_with_faults(root: Path) -> tuple[Path, list[str]]:
    manifest = synthetic_corpus(root, n=12)
    bad = [_truncated_flac(root / "audio" / "cut.flac"), _nan_wav(root / "audio" / "nan.wav")]
    with open(manifest, "a", encoding="utf-8") as f:
        for path in bad:
            f.write(f"audio/{path.name}\tspk0\t1.000\tba ko\n")
    return manifest, [str(p) for p in bad]


def _config(out: Path, **kw) -> TrainConfig:
    return TrainConfig(**{"output_dir": str(out), "max_steps": 6, "save_every": 2, "eval_every": 0,
                          "warmup_steps": 0, "learning_rate": 1e-3, "max_batch_seconds": 3, "progress": False,
                          "seed": 0, "log_every": 1, **kw})


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    manifest, bad = _corpus_with_faults(root / "data")
    return manifest, bad, tiny_model_dir(root / "model")


def test_load_audio_rejects_truncated_and_non_finite_files(tmp_path):
    with pytest.raises(AudioError, match="cannot decode"):
        load_audio(_truncated_flac(tmp_path / "cut.flac"))
    with pytest.raises(AudioError, match="100 of 16000 samples are not finite"):
        load_audio(_nan_wav(tmp_path / "nan.wav"))


def test_inverted_stereo_warns_that_the_downmix_is_silence(tmp_path, caplog):
    left = (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    sf.write(str(tmp_path / "inv.wav"), np.stack([left, -left], axis=1), 16000)
    with caplog.at_level(logging.WARNING):
        samples = load_audio(tmp_path / "inv.wav")
    assert np.abs(samples).max() < 1e-4
    assert any("cancel out" in r.getMessage() and "inv.wav" in r.getMessage() for r in caplog.records)
    caplog.clear()
    sf.write(str(tmp_path / "ok.wav"), np.stack([left, left], axis=1), 16000)
    with caplog.at_level(logging.WARNING):
        load_audio(tmp_path / "ok.wav")
    assert not caplog.records


def test_training_skips_and_counts_files_that_fail_mid_run(faulty, tmp_path):
    manifest, bad, model = faulty
    result = run_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.2, split_seed=3),
                          ModelArguments(model=str(model), mask_time_prob=0.0), _config(tmp_path / "run"))
    record = json.loads(result.record_path.read_text())
    assert record["status"] == "completed" and result.train.steps == 6
    assert all(math_finite(h["loss"]) for h in record["history"] if "loss" in h)
    # both passed header validation and were caught on decode, wherever they landed (training or validation)
    assert record["data"]["decode_failures"] == 2
    failed = " ".join(record["data"]["decode_failed_files"])
    assert "cut.flac" in failed and "nan.wav: 100 of 16000 samples are not finite" in failed
    assert record["data"]["skipped"] >= 2


def math_finite(x) -> bool:
    return isinstance(x, float) and np.isfinite(x)


def test_evaluate_and_transcribe_skip_and_count_them(faulty, tmp_path, capsys):
    manifest, bad, model = faulty
    run = tmp_path / "run"
    run_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.2, allow_unknown_chars=True),
                 ModelArguments(model=str(model), mask_time_prob=0.0), _config(run, max_steps=1, save_every=0))
    metrics = run_evaluate(EvaluateArguments(model=str(run / "model"), manifest=str(manifest),
                                             output_dir=str(tmp_path / "eval"), progress=False))
    assert metrics["skipped"] == 2 and metrics["utterances"] == 12
    capsys.readouterr()
    good = str(Path(manifest).parent / "audio" / "u0.wav")
    assert main(["transcribe", str(run / "model"), good, *bad]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith(good + "\t") and "<error" not in lines[0]
    assert "not finite" in lines[2] and "cannot decode" in lines[1]
    assert "2 of 3 file(s) could not be transcribed" in err


def test_a_batch_of_only_failed_files_is_a_zero_update(tmp_path):
    setup = prepare_finetune(DataArguments(train_manifest=str(synthetic_corpus(tmp_path / "d", n=8)),
                                           valid_fraction=0.25, allow_unknown_chars=True),
                             ModelArguments(model=str(tiny_model_dir(tmp_path / "m")), mask_time_prob=0.0),
                             progress=False)
    batch = CTCCollator()([{"index": 0, "path": "a.flac", "failed": "x"}, {"index": 1, "path": "b", "failed": "y"}])
    assert batch == {"failed": [("a.flac", "x"), ("b", "y")]}
    model = setup.new_model()
    loss = setup.objective.loss(model, batch)
    loss.backward()
    assert float(loss.detach()) == 0.0 and setup.objective.decode_failures == {"a.flac": "x", "b": "y"}
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters() if p.requires_grad)


@pytest.fixture
def setup(tmp_path):
    return prepare_finetune(DataArguments(train_manifest=str(synthetic_corpus(tmp_path / "d", n=12)),
                                          valid_fraction=0.25, allow_unknown_chars=True),
                            ModelArguments(model=str(tiny_model_dir(tmp_path / "m")), mask_time_prob=0.0),
                            progress=False)


def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(setup, tmp_path):
    out = tmp_path / "run"
    real_loss, calls = setup.objective.loss, []

    def poisoned(model, batch):
        calls.append(1)
        loss = real_loss(model, batch)
        return loss * float("nan") if len(calls) == 5 else loss

    setup.objective.loss = poisoned
    with pytest.raises(TrainingError, match=r"loss is not finite .* at step 5; the last good checkpoint \(step-4\)"):
        train(setup.new_model(), setup.train_set, None, _config(out), setup.objective)
    assert (out / "checkpoints" / "latest").read_text() == "step-4"
    assert not (out / "model").exists()
    setup.objective.loss = real_loss  # the kept checkpoint resumes cleanly
    result = train(setup.new_model(), setup.train_set, None, _config(out), setup.objective)
    assert result.resumed_from_step == 4 and result.steps == 6


def test_non_finite_weights_refused_before_training(setup, tmp_path):
    model = setup.new_model()
    with torch.no_grad():
        model.wav2vec2.encoder.layers[1].attention.k_proj.weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match=r"not finite .* at step 0, before training: "
                                            r"wav2vec2.encoder.layers.1.attention.k_proj.weight"):
        train(model, setup.train_set, None, _config(tmp_path / "run"), setup.objective)
    assert not (tmp_path / "run" / "checkpoints").exists()
