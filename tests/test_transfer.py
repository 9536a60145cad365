"""parp sweep with transfer: true: PARP-P' cells on B from A's OMP mask and their random-twin controls run once
each, after their source's OMP cell, and their result rows name the source language."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess

import pytest
import torch
from helpers import synthetic_corpus, tiny_model_dir

from parp.errors import ConfigError
from parp.experiments.cells import Cell, prerequisite
from parp.experiments.grid import SweepConfig, validate_sweep
from parp.experiments.sweep import WAIT, Decision, next_cell, run_sweep
from parp.results import read_results
from parp.sparsity import Mask

STEPS = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    return (synthetic_corpus(root / "xx", n=12, seed=1), synthetic_corpus(root / "yy", n=12, seed=2),
            tiny_model_dir(root / "model"))


def _config(setup, out, **overrides) -> SweepConfig:
    xx, yy, model = setup
    values = dict(output_dir=str(out), languages=[f"xx={xx}", f"yy={yy}"], methods=["omp", "parp"],
                  sparsities=[0.5], model=str(model), mask_time_prob=0.0, max_steps=STEPS, learning_rate=5e-2,
                  warmup_steps=0, eval_every=0, save_every=0, max_batch_seconds=4, valid_fraction=0.25,
                  progress=False, prune_every=1, transfer=True)
    values.update(overrides)
    return SweepConfig(**values)


def _per_tensor_pruned(mask: Mask) -> dict[str, int]:
    return {name: int((~mask[name]).sum()) for name in mask}


def test_transfer_cells_run_once_from_their_source_mask_and_name_it_in_the_results(setup, tmp_path, capsys):
    out = tmp_path / "sweep"
    rows = run_sweep(_config(setup, out))
    assert len(rows) == 2 * 3 + 2 * 2  # none, omp, parp per language; transfer + control per ordered pair
    transfer = {(r["method"], r["language"], r["mask_from"]) for r in rows if r["mask_from"]}
    assert transfer == {("transfer", "yy", "xx"), ("transfer-random", "yy", "xx"),
                        ("transfer", "xx", "yy"), ("transfer-random", "xx", "yy")}
    assert all(r["mask_from"] is None for r in rows if r["method"] in ("none", "omp", "parp"))
    csv_rows = read_results(out / "results.csv")
    assert {(r["method"], r["language"], r["mask_from"]) for r in csv_rows if r["mask_from"]} == transfer
    assert next(r for r in csv_rows if r["method"] == "transfer")["cell"].startswith("cells/")
    from parp.experiments.cells import collect_results  # without the grid: cells found from their folders

    assert {(r["method"], r["language"], r["mask_from"]) for r in collect_results(out) if r["mask_from"]} == transfer

    # PARP-P': the cell started from the source language's exported OMP mask (its record says so)
    source_mask = Cell("xx", "omp", 0.5, 0).directory(out) / "model" / "mask.safetensors"
    moved = Cell("yy", "transfer", 0.5, 0, mask_from="xx").directory(out)
    record = json.loads((moved / "run.json").read_text())
    assert record["arguments"]["prune"]["initial_mask"] == str(source_mask)
    assert record["arguments"]["prune"]["method"] == "parp"
    reprunes = next(p for p in record["phases"] if p.get("reprunes"))["reprunes"]
    assert all(0.0 <= e["iou_with_start"] <= 1.0 for e in reprunes) and len(reprunes) >= STEPS

    # the control starts from a random mask with the source mask's per-tensor sparsities, not its weights
    twin_dir = Cell("yy", "transfer-random", 0.5, 0, mask_from="xx").directory(out)
    twin = Mask.load(twin_dir / "start" / "mask.safetensors")
    source = Mask.load(source_mask)
    assert _per_tensor_pruned(twin) == _per_tensor_pruned(source)
    assert twin.iou(source) < 0.6  # random choice of weights: near s/(2-s) = 0.33, far from 1
    twin_record = json.loads((twin_dir / "run.json").read_text())
    assert twin_record["arguments"]["prune"]["initial_mask"] == str(twin_dir / "start" / "mask.safetensors")
    # the final mask of the cell is its exported one, not the start mask lying in the cell folder
    twin_row = next(r for r in rows if r["method"] == "transfer-random" and r["language"] == "yy")
    assert twin_row["mask"] == "cells/yy/transfer-random-from-xx/s0.5/seed0/model/mask.safetensors"

    # resumable like every cell: a rerun runs nothing
    before = {p: p.stat().st_mtime_ns for p in out.glob("cells/**/run.json")}
    capsys.readouterr()
    run_sweep(_config(setup, out))
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/**/run.json")} == before
    assert capsys.readouterr().out.count("completed earlier, skipped") == 10


def _complete(directory) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run.json").write_text(json.dumps({"status": "completed"}))


def test_transfer_cells_wait_while_their_source_omp_cell_runs(tmp_path):
    out = tmp_path / "sweep"
    config = SweepConfig(output_dir=str(out), languages=["xx=a.tsv", "yy=b.tsv"], methods=["omp", "parp"],
                         sparsities=[0.5], transfer=True)
    _, cells = validate_sweep(config)
    source = Cell("xx", "omp", 0.5, 0)
    waiting = [c for c in cells if c.mask_from == "xx"]
    assert {prerequisite(config, c) for c in waiting} == {source}  # the Ray launcher waits on the same cell
    for cell in cells:
        if not cell.mask_from and cell != source:
            _complete(cell.directory(out))
    worker = subprocess.Popen(["sleep", "60"])  # another live worker holds xx's OMP cell
    try:
        from parp.experiments.claims import _process_start

        (source.directory(out)).mkdir(parents=True)
        (source.directory(out) / "claimed.pid").write_text(json.dumps(
            {"pid": worker.pid, "host": socket.gethostname(), "start": _process_start(worker.pid)}))
        announced: set[int] = set(range(1, len(cells) + 1)) - {i for i, c in enumerate(cells, 1) if c.mask_from}
        picked = []
        while (pick := next_cell(config, cells, out, announced)).decision is Decision.RUN:
            picked.append(cells[pick.number - 1])
            announced.add(pick.number)
        assert pick == WAIT
        assert sorted(c.label() for c in picked) == ["xx transfer from yy s=0.5 seed=0",
                                                     "xx transfer-random from yy s=0.5 seed=0"]
        assert not any((c.directory(out) / "claimed.pid").exists() for c in waiting)
        # the source finishes: its transfer cells are claimed next
        _complete(source.directory(out))
        pick = next_cell(config, cells, out, announced)
        assert pick.decision is Decision.RUN and cells[pick.number - 1] in waiting and pick.dense is None
    finally:
        worker.kill()
        worker.wait()


def test_transfer_grid_needs_omp_parp_two_languages_and_known_sources():
    two = ["xx=a.tsv", "yy=b.tsv"]
    with pytest.raises(ConfigError, match="needs methods omp"):
        validate_sweep(SweepConfig(languages=two, methods=["parp"], transfer=True))
    with pytest.raises(ConfigError, match="at least two languages"):
        validate_sweep(SweepConfig(languages=two[:1], transfer=True))
    with pytest.raises(ConfigError, match="transfer_sources: zz"):
        validate_sweep(SweepConfig(languages=two, transfer=True, transfer_sources=["zz"]))
    with pytest.raises(ConfigError, match="scope global or layer"):
        validate_sweep(SweepConfig(languages=two, transfer=True, scope="ffn"))
    _, cells = validate_sweep(SweepConfig(languages=[*two, "zz=c.tsv"], sparsities=[0.5, 0.7], seeds=[0, 1],
                                          transfer=True, transfer_sources=["zz"]))
    moved = [c for c in cells if c.mask_from]
    assert len(moved) == 2 * 2 * 2 * 2  # 2 targets x 2 methods x 2 sparsities x 2 seeds, all from zz
    assert {c.mask_from for c in moved} == {"zz"} and {c.language for c in moved} == {"xx", "yy"}


def test_random_twin_keeps_every_tensors_pruned_count_and_is_seeded():
    torch.manual_seed(0)
    params = {"a": torch.randn(8, 16), "b": torch.randn(32)}
    mask = Mask.magnitude(params, 0.6)  # global: the two tensors end at different sparsities
    twin = Mask.random_like(mask, seed=3)
    assert _per_tensor_pruned(twin) == _per_tensor_pruned(mask)
    assert twin == Mask.random_like(mask, seed=3) and twin != Mask.random_like(mask, seed=4)
    assert twin != mask


def test_parp_hook_keeps_its_starting_mask_across_a_resume():
    """The IoU with the start (the transfer report's movement plot) stays right after a checkpoint restore."""
    from parp.methods.hooks import PARPHook

    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8, 8))
    start = Mask.magnitude({"w": weight}, 0.5)
    hook = PARPHook(lambda m: Mask.magnitude({"w": weight}, 0.5), prune_every=1, initial_mask=start)
    restored = PARPHook(lambda m: Mask.magnitude({"w": weight}, 0.5), prune_every=1)
    restored.load_state_dict(hook.state_dict())
    assert restored.start == start and restored.mask == start


def test_only_cells_selects_a_slice_of_the_grid_with_the_cells_it_continues():
    three = ["xx=a.tsv", "yy=b.tsv", "zz=c.tsv"]
    config = SweepConfig(languages=three, sparsities=[0.5], seeds=[0, 1], transfer=True,
                         only_cells=["yy/transfer-from-xx/s0.5/seed1", "zz/parp/*/seed1"])
    _, cells = validate_sweep(config)
    # the transfer cell pulls in its source's OMP cell, which pulls in that language's dense cell; grid order kept
    assert [c.label() for c in cells] == ["xx none s=0 seed=1", "xx omp s=0.5 seed=1", "zz parp s=0.5 seed=1",
                                          "yy transfer from xx s=0.5 seed=1"]
    with pytest.raises(ConfigError, match=r"--only_cells: 'yy/omp/s0.7/\*' matches no cell"):
        validate_sweep(dataclasses.replace(config, only_cells=["yy/omp/s0.7/*"]))
