"""The Python API: ``import parp`` stays cheap, docs/api.md runs as written, targets= reach any nn.Module."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import synthetic_corpus
from torch import nn

from parp.errors import MaskError

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_import_parp_does_not_load_torch():
    code = "import sys, parp; print('torch' in sys.modules, 'transformers' in sys.modules, parp.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["False", "False"]


def test_public_names():
    import parp

    for name in ("Mask", "magnitude_mask", "prune", "finetune", "evaluate", "measure_sparsity", "apply_mask"):
        assert callable(getattr(parp, name)), name
    with pytest.raises(AttributeError):
        parp.no_such_name  # noqa: B018


def test_docs_api_mask_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks()
    assert len(blocks) == 3
    exec(compile(blocks[0], str(DOC), "exec"), {})
    assert (tmp_path / "bert-mask.safetensors").exists()


def test_docs_api_pipeline_example_runs(tmp_path, monkeypatch):
    synthetic_corpus(tmp_path, n=16)
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks()[1], str(DOC), "exec"), {})
    assert (tmp_path / "runs" / "parp50" / "model" / "model.safetensors").exists()
    assert (tmp_path / "runs" / "dense" / "run.json").exists()


def test_docs_api_trainer_callback_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks()[2], str(DOC), "exec"), {})
    assert (tmp_path / "runs" / "trainer-omp" / "checkpoint-4" / "parp_mask.safetensors").exists()


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
        self.classifier = nn.Linear(8, 3)


def test_auto_targets_prune_every_linear_but_the_head():
    from parp import magnitude_mask

    mask = magnitude_mask(Tiny(), 0.5)
    assert sorted(mask.masks) == ["body.0.weight", "body.2.weight"]
    assert mask.sparsity() == pytest.approx(0.5)


def test_unknown_preset_and_empty_regex_targets_are_clear_errors():
    from parp import magnitude_mask, prunable_parameters

    with pytest.raises(MaskError, match="unknown targets preset 'bret'"):
        magnitude_mask(Tiny(), 0.5, targets="bret")
    with pytest.raises(MaskError, match="no prunable parameters found in Tiny"):
        prunable_parameters(Tiny(), targets=[r"nothing_here"])
    with pytest.raises(MaskError, match="targets="):  # the speech default names the way out
        prunable_parameters(Tiny())


def test_api_rejects_unknown_options():
    from parp import finetune
    from parp.errors import ConfigError

    with pytest.raises(ConfigError, match="finetune\\(\\): unknown option\\(s\\) lerning_rate"):
        finetune(train_manifest="x.tsv", lerning_rate=1e-3)


def test_speech_preset_unchanged_by_auto(tmp_path):
    from helpers import tiny_model_dir
    from transformers import Wav2Vec2ForCTC

    from parp import prunable_parameters

    model = Wav2Vec2ForCTC.from_pretrained(tiny_model_dir(tmp_path / "m"))
    assert list(prunable_parameters(model, targets="auto")) == list(prunable_parameters(model))
    assert len(prunable_parameters(model)) == 2 * 6
    torch.testing.assert_close(sum(p.numel() for p in prunable_parameters(model, targets="auto").values()),
                               2 * (4 * 32 * 32 + 2 * 32 * 64))
