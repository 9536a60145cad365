"""parp masks compare: IoU and overlap of pruned sets, overall and per layer."""

from __future__ import annotations

import json

import pytest

from parp.cli import main
from parp.experiments.masks import compare_masks
from parp.sparsity.overlap import random_iou
from parp.models import tiny_ctc_model
from parp.sparsity import Mask, prunable_parameters


@pytest.fixture(scope="module")
def params():
    return prunable_parameters(tiny_ctc_model("wav2vec2", num_hidden_layers=2))


def test_identical_masks_have_iou_one(params, tmp_path, capsys):
    a = Mask.magnitude(params, 0.6).save(tmp_path / "a.safetensors")
    b = Mask.magnitude(params, 0.6).save(tmp_path / "b.safetensors")
    out = tmp_path / "cmp.json"
    assert main(["masks", "compare", str(a), str(b), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    pair_line = next(line for line in printed.splitlines() if line.startswith("[0][1]"))
    assert pair_line.split()[1] == "1.0000"
    assert "layer 0" in printed and "layer 1" in printed
    result = json.loads(out.read_text())
    pair = result["pairs"][0]
    assert pair["overall"]["iou"] == 1.0 and pair["overall"]["overlap_of_a"] == 1.0
    assert all(s["iou"] == 1.0 for s in pair["per_layer"].values())
    assert result["iou_matrix"] == [[1.0, 1.0], [1.0, 1.0]]


def test_random_masks_overlap_as_expected_by_chance(params):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        paths = [Mask.random(params, 0.5, seed=s).save(Path(d) / f"r{s}.safetensors") for s in (1, 2, 3)]
        result = compare_masks(paths)
    assert len(result["pairs"]) == 3
    for pair in result["pairs"]:
        assert pair["overall"]["iou"] == pytest.approx(random_iou(0.5), abs=0.03)
        assert pair["overall"]["random_iou"] == pytest.approx(random_iou(0.5), abs=1e-3)


def test_masks_of_different_models_are_one_clear_error(params, tmp_path, capsys):
    a = Mask.magnitude(params, 0.5).save(tmp_path / "a.safetensors")
    other = prunable_parameters(tiny_ctc_model("wav2vec2", num_hidden_layers=3))
    b = Mask.magnitude(other, 0.5).save(tmp_path / "b.safetensors")
    assert main(["masks", "compare", str(a), str(b)]) == 2
    assert "different parameters" in capsys.readouterr().err
    assert main(["masks", "compare", str(a)]) == 2
