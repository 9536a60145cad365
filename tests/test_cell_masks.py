"""Collecting a sweep's results only reads: a finished cell without a mask file (an older parp's export) gets one
when the sweep runs (write_missing_masks), never while results are collected."""

from __future__ import annotations

import json

import torch

from parp.experiments.cell_masks import DERIVED_MASK, final_mask_path, write_missing_masks
from parp.experiments.cells import Cell, collect_results
from parp.models import tiny_ctc_model
from parp.sparsity import Mask, prunable_parameters


def _finished_cell_without_mask(out):
    cell = Cell("xx", "omp", 0.5, 0)
    directory = cell.directory(out)
    model = tiny_ctc_model("wav2vec2", vocab_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2)
    mask = Mask.magnitude(prunable_parameters(model), 0.5)
    mask.apply_(model)
    model.save_pretrained(directory / "model")
    (directory / "run.json").write_text(json.dumps({"status": "completed", "command": "prune", "metrics": {}}))
    return cell, directory, mask


def test_collecting_never_writes_and_the_running_sweep_derives_the_mask(tmp_path):
    out = tmp_path / "sweep"
    cell, directory, mask = _finished_cell_without_mask(out)
    files = sorted(p for p in out.rglob("*"))
    rows = collect_results(out, [cell])
    assert sorted(p for p in out.rglob("*")) == files  # nothing written, no model loaded into a file
    assert rows[0]["mask"] == "cells/xx/omp/s0.5/seed0/model/mask.safetensors"  # where export writes it
    assert write_missing_masks([directory]) == [directory / DERIVED_MASK]
    assert final_mask_path(directory) == directory / DERIVED_MASK
    assert Mask.load(directory / DERIVED_MASK) == mask  # kept = the non-zero weights
    assert collect_results(out, [cell])[0]["mask"] == f"cells/xx/omp/s0.5/seed0/{DERIVED_MASK}"
    assert write_missing_masks([directory]) == []  # once


def test_a_cell_whose_export_wrote_the_mask_needs_nothing(tmp_path):
    out = tmp_path / "sweep"
    cell, directory, mask = _finished_cell_without_mask(out)
    mask.save(directory / "model" / "mask.safetensors")
    assert write_missing_masks([directory]) == []
    assert final_mask_path(directory) == directory / "model" / "mask.safetensors"
    assert torch.equal(Mask.load(final_mask_path(directory))[next(iter(mask))], next(iter(mask.masks.values())))
