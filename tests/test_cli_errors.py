"""Bad input gives exit status 2 and one ``parp: error: ...`` line naming the culprit; bad audio is skipped."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from parp.cli import main
from parp.models import tiny_ctc_model


def _mboshi_clips(mboshi_dir: Path, out: Path, n: int, max_seconds: float = 3.0, skip: int = 0) -> list[tuple[str, str]]:
    """Decode ``n`` short real Mboshi clips and write them as new 16 kHz wavs under ``out`` (no data copying)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(mboshi_dir / "train.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if float(r["duration"]) <= max_seconds]
    clips = []
    for i, row in enumerate(rows[skip: skip + n]):
        samples, rate = sf.read(str(mboshi_dir / row["path"]), dtype="float32")
        target = out / f"clip{skip + i:04d}.wav"
        sf.write(str(target), samples, rate)
        clips.append((str(target), row["text"]))
    return clips


def _write_manifest(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("path\ttext\n")
        for audio, text in rows:
            f.write(f"{audio}\t{text}\n")
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "tiny-wav2vec2"
    tiny_ctc_model("wav2vec2", seed=0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def small_corpus(mboshi_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    train = _mboshi_clips(mboshi_dir, root / "audio", 14)
    valid = _mboshi_clips(mboshi_dir, root / "audio", 4, skip=14)
    return _write_manifest(root / "train.tsv", train), _write_manifest(root / "valid.tsv", valid)


def _one_error_line(capsys, *must_name: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("parp: error: "), lines[0]
    assert "Traceback" not in err
    for name in must_name:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"
    return lines[0]


def test_missing_model_folder(tmp_path, capsys):
    missing = tmp_path / "absent-model"
    manifest = _write_manifest(tmp_path / "m.tsv", [("a.wav", "x")])
    code = main(["finetune", "--model", str(missing), "--train-manifest", str(manifest),
                 "--output-dir", str(tmp_path / "out")])
    assert code == 2
    _one_error_line(capsys, "absent-model")


def test_negative_learning_rate(tmp_path, tiny_model, capsys):
    manifest = _write_manifest(tmp_path / "m.tsv", [("a.wav", "x")])
    code = main(["finetune", "--model", str(tiny_model), "--train-manifest", str(manifest),
                 "--output-dir", str(tmp_path / "out"), "--learning-rate", "-0.001"])
    assert code == 2
    _one_error_line(capsys, "--learning-rate", "-0.001")
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_missing_manifest_column(tmp_path, tiny_model, capsys):
    manifest = tmp_path / "no-text.tsv"
    manifest.write_text("path\tsentence\na.wav\tsomething\n", encoding="utf-8")
    code = main(["finetune", "--model", str(tiny_model), "--train-manifest", str(manifest),
                 "--output-dir", str(tmp_path / "out")])
    assert code == 2
    _one_error_line(capsys, "no-text.tsv", "'text'")


def test_unseen_characters_in_validation_manifest(tmp_path, tiny_model, small_corpus, capsys):
    train, valid = small_corpus
    bad_valid = tmp_path / "valid-unseen.tsv"
    first_audio = valid.read_text(encoding="utf-8").splitlines()[1].split("\t")[0]
    _write_manifest(bad_valid, [(first_audio, "qqq zzz 42")])
    code = main(["finetune", "--model", str(tiny_model), "--train-manifest", str(train),
                 "--valid-manifest", str(bad_valid), "--output-dir", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    line = _one_error_line(capsys, "valid-unseen.tsv")
    assert "'q'" in line and "'4'" in line


def test_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rate: 0.001\nlerning_rate_typo: 3\n", encoding="utf-8")
    assert main(["finetune", "--config", str(config)]) == 2
    _one_error_line(capsys, "bad.yaml", "lerning_rate_typo")


def test_config_file_not_found(tmp_path, capsys):
    assert main(["finetune", "--config", str(tmp_path / "nowhere.yaml")]) == 2
    _one_error_line(capsys, "nowhere.yaml", "not found")


def test_unknown_flag(capsys):
    assert main(["finetune", "--bogus-flag", "3"]) == 2
    _one_error_line(capsys, "--bogus-flag")


def test_a_value_of_the_wrong_type_is_one_line_without_the_usage_block(capsys):
    assert main(["finetune", "--max-steps", "abc"]) == 2
    line = _one_error_line(capsys, "--max-steps", "'abc'")
    assert "usage:" not in line


def test_finetune_help_exits_zero(capsys):
    try:
        code = main(["finetune", "--help"])
    except SystemExit as exc:  # argparse's own --help exit
        code = exc.code
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "--learning-rate" in out or "--learning_rate" in out
    assert "--config" in out


@pytest.mark.parametrize("command", ["finetune", "evaluate", "prune", "sweep", "report", "demo", "synth", "pretrain",
                                     "pretrain downstream", "transcribe"])
def test_every_command_prints_its_help(command, capsys):
    """argparse %-formats help texts: one stray '%' in a help string made `parp prune --help` a traceback."""
    try:
        code = main([*command.split(), "--help"])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    assert "usage:" in capsys.readouterr().out


@pytest.mark.slow
def test_bad_audio_is_skipped_and_config_file_is_used(tmp_path, tiny_model, small_corpus, mboshi_dir, capsys):
    train, valid = small_corpus
    rows = [tuple(line.split("\t")) for line in train.read_text(encoding="utf-8").splitlines()[1:]]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(300))
    (bad / "empty.wav").write_bytes(b"")
    sf.write(str(bad / "zero.wav"), np.zeros(0, dtype=np.float32), 16000)
    # a real clip turned into stereo at 44.1 kHz
    samples, rate = sf.read(rows[0][0], dtype="float32")
    up = soxr.resample(samples, rate, 44100)
    sf.write(str(bad / "stereo44k.wav"), np.stack([up, 0.5 * up], axis=1), 44100)
    assert sf.info(str(bad / "stereo44k.wav")).channels == 2
    manifest = _write_manifest(tmp_path / "mixed.tsv", rows[1:] + [
        (str(bad / "corrupt.wav"), rows[1][1]), (str(bad / "empty.wav"), rows[2][1]),
        (str(bad / "zero.wav"), rows[3][1]), (str(bad / "stereo44k.wav"), rows[0][1])])
    out = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"train:\n  max_steps: 50\n  learning_rate: 0.0007\n  warmup_steps: 1\n  eval_every: 0\n"
        f"  save_every: 0\n  max_batch_seconds: 12\n  output_dir: {out}\n"
        f"data:\n  train_manifest: {manifest}\n  valid_manifest: {valid}\n  allow_unknown_chars: true\nmodel:\n  model: {tiny_model}\n",
        encoding="utf-8")
    code = main(["finetune", "--config", str(config), "--max-steps", "8", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "completed"
    # config-file values used, CLI flag wins
    assert record["arguments"]["train"]["learning_rate"] == pytest.approx(0.0007)
    assert record["arguments"]["train"]["max_batch_seconds"] == 12
    assert record["arguments"]["train"]["max_steps"] == 8
    assert record["phases"][-1]["steps"] == 8
    # three bad files skipped and counted; the stereo 44.1 kHz file kept
    data = record["data"]
    assert data["skipped"] == 3, data["skipped_files"]
    skipped = "\n".join(data["skipped_files"])
    for name in ("corrupt.wav", "empty.wav", "zero.wav"):
        assert name in skipped
    assert "stereo44k.wav" not in skipped
    assert data["train_utterances"] == len(rows)  # len(rows) - 1 real clips + the stereo one
    # 8 updates cover a whole epoch, so every kept clip (the stereo one too) was decoded and trained on
    assert max(h.get("epoch", 0) for h in record["history"]) >= 1, record["history"]
    assert (out / "model" / "config.json").exists()


def test_pretraining_entry_points_are_parp_commands_with_one_line_errors(tmp_path, capsys):
    """``parp pretrain downstream`` (once ``python -m parp.pretrain.downstream``) and ``parp pretrain`` go through
    the one CLI: bad input is one line, exit status 2."""
    from parp.cli import _usage

    assert "(also: parp pretrain downstream)" in _usage()
    assert main(["pretrain", "downstream", "--checkpoint", str(tmp_path / "nowhere"),
                 "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("parp: error: --checkpoint") and err.count("\n") == 1
    assert main(["pretrain", "--sources", str(tmp_path), "--model_overrides", "{not json",
                 "--output_dir", str(tmp_path / "ssl")]) == 2
    err = capsys.readouterr().err
    assert "--model_overrides must be a JSON object" in err and err.count("\n") == 1


def test_a_broken_pretraining_record_is_one_line(tmp_path, capsys):
    run, down = tmp_path / "run", tmp_path / "down"
    run.mkdir()
    down.mkdir()
    (run / "pretraining.json").write_text("{half written")
    (run / "loss_curve.png").write_bytes(b"")
    (run / "model.safetensors").write_bytes(b"")
    assert main(["card", "install", "--pretrain_dir", str(run), "--command", "parp pretrain ...",
                 "--target", str(tmp_path / "card")]) == 2
    err = capsys.readouterr().err
    assert err == f"parp: error: {run / 'pretraining.json'}: not readable JSON\n"
