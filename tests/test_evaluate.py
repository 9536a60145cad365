"""``parp evaluate`` and ``parp transcribe`` on a tiny model fine-tuned by ``parp finetune``."""

import csv
import json
import math
from pathlib import Path

import pytest
import soundfile as sf

from parp.cli import main
from parp.models import tiny_ctc_model


@pytest.fixture(scope="module")
def trained(mboshi_dir, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("evaluate")
    (root / "audio").mkdir()
    with open(mboshi_dir / "train.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if float(r["duration"]) <= 3.0][:12]
    paths = []
    for i, row in enumerate(rows):
        samples, rate = sf.read(str(mboshi_dir / row["path"]), dtype="float32")
        path = root / "audio" / f"e{i:02d}.wav"
        sf.write(str(path), samples, rate)
        paths.append((str(path), row["text"]))
    train = root / "train.tsv"
    train.write_text("path\ttext\n" + "".join(f"{p}\t{t}\n" for p, t in paths), encoding="utf-8")
    tiny_ctc_model("wav2vec2", seed=0).save_pretrained(root / "tiny")
    code = main(["finetune", "--model", str(root / "tiny"), "--train-manifest", str(train), "--valid-manifest",
                 str(train), "--output-dir", str(root / "run"), "--max-steps", "3", "--save-every", "0",
                 "--eval-every", "0", "--no-progress"])
    assert code == 0
    # an evaluation manifest with 6 good clips and one corrupt file
    bad = root / "audio" / "broken.wav"
    bad.write_bytes(b"not audio at all" * 10)
    manifest = root / "eval.tsv"
    manifest.write_text("path\ttext\n" + "".join(f"{p}\t{t}\n" for p, t in paths[:6]) + f"{bad}\t{paths[0][1]}\n",
                        encoding="utf-8")
    return root / "run" / "model", manifest, [p for p, _ in paths[:6]]


def test_evaluate_writes_metrics_and_predictions(trained, tmp_path, capsys):
    model, manifest, good = trained
    out = tmp_path / "eval"
    code = main(["evaluate", "--model", str(model), "--manifest", str(manifest), "--output-dir", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    for key in ("wer", "cer"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0
    assert metrics["utterances"] == len(good)
    assert metrics["skipped"] == 1
    with open(out / "predictions.tsv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        assert reader.fieldnames == ["path", "reference", "hypothesis", "cer"]
        rows = list(reader)
    assert sorted(r["path"] for r in rows) == sorted(good)
    for row in rows:
        assert row["reference"]
        assert float(row["cer"]) >= 0
    assert json.loads(capsys.readouterr().out)["utterances"] == len(good)
    assert json.loads((out / "run.json").read_text())["status"] == "completed"


def test_transcribe_prints_one_line_per_file_and_survives_bad_files(trained, tmp_path, capsys):
    model, _, good = trained
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    files = [good[0], good[1], str(empty), str(tmp_path / "missing.wav")]
    assert main(["transcribe", str(model), *files]) == 0
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert len(lines) == len(files)
    for line, path in zip(lines, files):
        assert line.startswith(path + "\t")
    assert "<error:" not in lines[0] and "<error:" not in lines[1]
    assert lines[2].split("\t", 1)[1].startswith("<error: ") and "empty" in lines[2]
    assert lines[3].split("\t", 1)[1].startswith("<error: ") and "not found" in lines[3]


def test_evaluate_missing_model_is_one_line(tmp_path, capsys):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\na.wav\tx\n", encoding="utf-8")
    assert main(["evaluate", "--model", str(tmp_path / "gone"), "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("parp: error: ") and "gone" in err[0]


def test_training_validation_and_evaluate_score_alike(trained, tmp_path, capsys):
    """One prediction path: the training loop's validation (``CTCObjective.evaluate``) over the batches
    ``parp evaluate`` decodes gives its WER/CER, and ``parp transcribe`` the hypotheses evaluate wrote."""
    from torch.utils.data import DataLoader

    from parp.data import CTCCollator, LengthGroupedBatchSampler, SpeechDataset, read_manifest
    from parp.evaluation.evaluate import load_model_and_vocabulary
    from parp.evaluation.inference import batch_seconds
    from parp.training.ctc import CTCObjective

    model_dir, _, good = trained
    manifest = model_dir.parent.parent / "train.tsv"
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model_dir), "--manifest", str(manifest), "--output-dir", str(out),
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    model, vocabulary = load_model_and_vocabulary(str(model_dir))
    dataset = SpeechDataset(read_manifest(manifest), vocabulary, min_seconds=0.0).validate(False)
    sampler = LengthGroupedBatchSampler(dataset.durations, batch_seconds(model, 120.0), shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=CTCCollator(vocabulary.pad_id))
    validation = CTCObjective(vocabulary).evaluate(model, loader, None)
    assert metrics["utterances"] == 12 and 0 < metrics["cer"]
    assert validation == {"wer": metrics["wer"], "cer": metrics["cer"]}
    with open(out / "predictions.tsv", encoding="utf-8", newline="") as f:
        written = {r["path"]: r["hypothesis"]
                   for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")}
    capsys.readouterr()
    assert main(["transcribe", str(model_dir), *good]) == 0
    lines = [line.split("\t", 1) for line in capsys.readouterr().out.splitlines()]
    assert [p for p, _ in lines] == good and all(written[p] == t for p, t in lines)
