"""Issue 17, points 5 and 6: each hostile input is one ``parp: error:`` line naming the culprit, before compute."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
from helpers import synthetic_corpus, tiny_model_dir

from parp.cli import main
from parp.records import RunRecord
from parp.sparsity import Mask


def _one_line(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("parp: error: ") and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    return synthetic_corpus(root / "data", n=10), tiny_model_dir(root / "model")


def _finetune(data, out, *extra):
    manifest, model = data
    return ["finetune", "--model", str(model), "--train-manifest", str(manifest), "--output-dir", str(out),
            "--max-steps", "1", "--save-every", "0", "--eval-every", "0", "--warmup-steps", "0", "--no-progress",
            "--max-batch-seconds", "3", "--allow-unknown-chars", *extra]


def test_latin1_manifest_and_config(data, tmp_path, capsys):
    manifest = tmp_path / "latin.tsv"
    manifest.write_bytes("path\ttext\na.wav\tcaf\xe9\n".encode("latin-1"))
    assert main(["finetune", "--train-manifest", str(manifest), "--output-dir", str(tmp_path / "o")]) == 2
    _one_line(capsys, "latin.tsv", "not UTF-8")
    config = tmp_path / "c.yaml"
    config.write_bytes("learning_rate: 1e-4 # d\xe9faut\n".encode("latin-1"))
    assert main(["finetune", "--config", str(config)]) == 2
    _one_line(capsys, "c.yaml", "not UTF-8")


@pytest.mark.parametrize("value,shown", [("null", "None"), ("[5]", "[5]"), ("'ten'", "'ten'")])
def test_wrong_typed_config_values(tmp_path, capsys, value, shown):
    config = tmp_path / "c.yaml"
    config.write_text(f"max_steps: {value}\n")
    assert main(["finetune", "--config", str(config)]) == 2
    _one_line(capsys, "--max-steps", shown)


def test_a_tab_inside_a_transcript_is_refused_not_truncated(tmp_path, capsys, data):
    manifest = tmp_path / "tab.tsv"
    manifest.write_text("path\ttext\na.wav\tba\tko\n", encoding="utf-8")
    assert main(["finetune", "--train-manifest", str(manifest), "--output-dir", str(tmp_path / "o")]) == 2
    _one_line(capsys, "tab.tsv:2", "found 3", "tab inside a transcript")


def test_corrupt_model_safetensors_in_finetune_and_transcribe(data, tmp_path, capsys):
    manifest, model = data
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(model).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    assert main(_finetune((manifest, broken), tmp_path / "o")) == 2
    _one_line(capsys, str(broken))
    (broken / "vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1, "|": 2, "a": 3}))
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!")  # corrupt header
    assert main(["transcribe", str(broken), str(manifest.parent / "audio" / "u0.wav")]) == 2
    _one_line(capsys, str(broken))


def test_output_dir_that_is_a_file_or_unwritable(data, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(_finetune(data, blocker)) == 2
    _one_line(capsys, str(blocker), "a file is in the way")

    real = Path.write_bytes

    def read_only(self, payload):
        if self.name.startswith(".parp-write-test"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, payload)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    assert main(_finetune(data, tmp_path / "ro")) == 2
    _one_line(capsys, "ro", "Read-only file system")


def test_disk_full_mid_run_is_one_line(data, tmp_path, capsys, monkeypatch):
    import parp.training.finetune as finetune

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / "checkpoints"))

    monkeypatch.setattr(finetune, "train", full)
    assert main(_finetune(data, tmp_path / "o")) == 2
    _one_line(capsys, "No space left on device", "checkpoints", "resume")


def test_checkpoint_of_another_vocabulary_is_one_line(tmp_path):
    from parp.data import DataArguments
    from parp.errors import ConfigError
    from parp.models import ModelArguments
    from parp.training.finetune import prepare_finetune
    from parp.training.loop import TrainConfig, train

    manifest = synthetic_corpus(tmp_path / "d", n=10)
    setup = prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.2, allow_unknown_chars=True),
                             ModelArguments(model=str(tiny_model_dir(tmp_path / "m")), mask_time_prob=0.0),
                             progress=False)
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=1, save_every=1, eval_every=0,
                         warmup_steps=0, max_batch_seconds=3, progress=False)
    train(setup.new_model(), setup.train_set, None, config, setup.objective)
    other = setup.new_model()
    other.lm_head = torch.nn.Linear(other.lm_head.in_features, other.lm_head.out_features + 3)
    with pytest.raises(ConfigError, match=r"checkpoint does not fit this run .*lm_head.*--overwrite-output-dir"):
        train(other, setup.train_set, None, config, setup.objective)


def test_damaged_mask_files(tmp_path):
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    from parp.errors import MaskError

    params = {"a.weight": torch.randn(4, 8), "b.weight": torch.randn(8, 8)}
    path = Mask.magnitude(params, 0.5).save(tmp_path / "m.safetensors")
    with safe_open(str(path), framework="np") as f:
        header = f.metadata()
    arrays = load_file(str(path))
    save_file({"a.weight": arrays["a.weight"]}, str(tmp_path / "missing.safetensors"), metadata=header)
    with pytest.raises(MaskError, match="names 'b.weight' but holds no such tensor"):
        Mask.load(tmp_path / "missing.safetensors")
    shapes = json.loads(header["shapes"])
    shapes["b.weight"] = [16, 8]
    save_file(arrays, str(tmp_path / "shape.safetensors"), metadata={**header, "shapes": json.dumps(shapes)})
    with pytest.raises(MaskError, match="'b.weight' does not unpack to shape"):
        Mask.load(tmp_path / "shape.safetensors")


def test_bad_scope_and_partial_initial_mask_fail_before_fine_tuning(data, tmp_path, capsys, monkeypatch):
    import parp.methods.context as base

    manifest, model = data
    trained = []
    monkeypatch.setattr(base, "train", lambda *a, **k: trained.append(1) or pytest.fail("fine-tuning ran"))
    common = ["--model", str(model), "--train-manifest", str(manifest), "--max-steps", "1", "--no-progress",
              "--allow-unknown-chars", "--max-batch-seconds", "3"]
    assert main(["prune", "--method", "omp", "--scope", "3:7", "--output-dir", str(tmp_path / "a"), *common]) == 2
    _one_line(capsys, "--scope 3:7", "divisible by 7")
    assert main(["prune", "--method", "omp", "--scope", "5:4", "--output-dir", str(tmp_path / "b"), *common]) == 2
    _one_line(capsys, "--scope 5:4")

    from parp.models import load_ctc_model
    from parp.sparsity import prunable_parameters

    params = prunable_parameters(load_ctc_model(str(model), vocab_size=8))
    some = dict(list(params.items())[:2])
    Mask.magnitude(some, 0.5).save(tmp_path / "partial.safetensors")
    assert main(["prune", "--method", "parp", "--initial-mask", str(tmp_path / "partial.safetensors"),
                 "--output-dir", str(tmp_path / "c"), *common]) == 2
    _one_line(capsys, "--initial-mask", f"covers 2 of the {len(params)}")
    assert trained == []


def test_total_finetune_steps_counts_steps_before_a_resume(tmp_path):
    record = RunRecord(tmp_path / "run.json", "prune")
    with record.phase("finetune-1") as p:  # resumed at its final step after a kill during the export
        p.update(steps=0, total_steps=4, resumed_from_step=4)
    with record.phase("finetune-2") as p:
        p.update(steps=1, total_steps=4, resumed_from_step=3)
    record.finish()
    assert json.loads((tmp_path / "run.json").read_text())["total_finetune_steps"] == 8
