"""parp report's cross-language sections: the transfer matrix from hand-made rows, per-layer IoU on hand-made masks,
the re-prune history from hand-made records, and masks of another sweep folder joining as a language."""

from __future__ import annotations

import json
import math

import pytest
import torch

from parp.cli import main
from parp.errors import ConfigError
from parp.models import tiny_ctc_model
from parp.reports.mask_layers import layer_iou_summary
from parp.reports.report import build_report
from parp.reports.reprunes import reprune_histories
from parp.reports.transfer import transfer_claim, transfer_grid, transfer_margins, transfer_pairs
from parp.reports.verdicts import Verdict
from parp.results import write_results
from parp.sparsity import Mask, prunable_parameters

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(method, language, seed, per, mask_from=None, mask=None, sparsity=0.5, **extra):
    return {"method": method, "language": language, "mask_from": mask_from, "sparsity_target": sparsity,
            "sparsity_achieved": sparsity, "seed": seed, "wer": None, "cer": None, "per": per, "finetune_steps": 100,
            "finetunings": 1, "wall_seconds": 10.0, "phase_wall_seconds": {"finetune": 10.0}, "dense_bytes": None,
            "compressed_bytes": None, "reused_dense": False, "iou_with_language_mask": None,
            "iou_with_pretrained_mask": None, "mask": mask, "cell": f"cells/{language}/{method}/seed{seed}", **extra}


def _transfer_rows() -> list[dict]:
    """aa -> bb loses 0.100 beyond the spread, its random twin 0.020 within it; bb -> aa gains 0.045."""
    values = {("parp", "bb", None): (0.30, 0.32), ("transfer", "bb", "aa"): (0.40, 0.42),
              ("transfer-random", "bb", "aa"): (0.31, 0.35), ("parp", "aa", None): (0.50, 0.50),
              ("transfer", "aa", "bb"): (0.45, 0.46), ("transfer-random", "aa", "bb"): (0.60, 0.62),
              ("omp", "aa", None): (0.55, 0.56), ("omp", "bb", None): (0.35, 0.36)}
    return [_row(method, language, seed, per, source) for (method, language, source), pers in values.items()
            for seed, per in enumerate(pers)]


def test_transfer_table_states_each_pairs_difference_against_the_seed_spread(tmp_path):
    rows = _transfer_rows()
    pairs = {(p.source, p.target): p for p in transfer_pairs(rows, "per")}
    forward, backward = pairs[("aa", "bb")], pairs[("bb", "aa")]
    assert forward.own == pytest.approx(0.31)
    assert forward.transfer.diff == pytest.approx(0.10) and forward.transfer.separable
    assert forward.transfer.spread == pytest.approx(math.sqrt(2) * 0.01)
    assert forward.random.diff == pytest.approx(0.02) and not forward.random.separable
    assert forward.versus_random.diff == pytest.approx(0.08) and forward.versus_random.separable
    assert backward.transfer.diff == pytest.approx(-0.045) and backward.transfer.separable
    sources, targets, grid, separable = transfer_grid(list(pairs.values()), 0.5)
    assert (sources, targets) == (["aa", "bb"], ["aa", "bb"]) and separable == [[False, True], [True, False]]
    assert math.isnan(grid[0][0]) and math.isnan(grid[1][1])
    assert grid[0][1] == pytest.approx(0.10) and grid[1][0] == pytest.approx(-0.045)
    _, _, random_grid, random_separable = transfer_grid(list(pairs.values()), 0.5, "random")
    assert random_grid[1][0] == pytest.approx(0.11) and random_separable[0][1] is False
    margins = transfer_margins(list(pairs.values()), 0.5)  # aa gave +0.100 and received -0.045; bb the reverse
    assert margins["aa"] == (pytest.approx(0.10), 1, pytest.approx(-0.045), 1)
    assert margins["bb"] == (pytest.approx(-0.045), 1, pytest.approx(0.10), 1)
    assert transfer_margins(list(pairs.values()), 0.7) == {}

    write_results(tmp_path, rows)
    text = build_report(tmp_path / "results.csv", tmp_path / "rep").read_text()
    assert "| aa | bb | 0.5 | 0.310 | +0.100 ± 0.014 | +0.020 ± 0.028 | +0.080 ± 0.028 | worse |" in text
    assert "| bb | aa | 0.5 | 0.500 | -0.045 ± 0.007 | +0.110 ± 0.014 | -0.155 ± 0.014 | better |" in text
    claim = transfer_claim(list(pairs.values()), "per")
    assert claim.claim == "d" and claim.verdict is Verdict.HOLDS_PARTLY  # one pair worse, one better
    moved = claim.with_sides("transfer", "parp")
    assert sorted((c.mask_from, c.language, round(c.diff, 3), c.separable) for c in moved) == [
        ("aa", "bb", 0.1, True), ("bb", "aa", -0.045, True)]
    assert len(claim.with_sides("transfer", "transfer-random")) == 2
    assert claim.figures["sign_test"] == (1, 2, pytest.approx(1.0))
    assert "Holds partly" in text.split("**Verdict.**")[1]  # the claim as the report states it
    assert "| aa | +0.100 | 1 | -0.045 | 1 |" in text  # donors and receivers
    assert "| bb | transfer |" not in text  # transfer rows stay out of the per-language results table
    assert (tmp_path / "rep" / "transfer_s0.5.png").read_bytes().startswith(PNG_SIGNATURE)


def test_sign_test_over_pairs_is_the_exact_binomial():
    from parp.reports.stats import sign_test

    assert sign_test([-0.01] * 11 + [0.003]) == (11, 12, pytest.approx(2 * 13 / 4096))
    assert sign_test([-1.0] * 12) == (12, 12, pytest.approx(2 / 4096))
    assert sign_test([0.0, 0.1, -0.1]) == (1, 2, 1.0)  # ties drop out
    assert sign_test([]) == (0, 0, 1.0)


def _mask(layer0: list[bool], layer1: list[bool]) -> Mask:
    return Mask({"encoder.layers.0.fc.weight": torch.tensor(layer0), "encoder.layers.1.fc.weight": torch.tensor(layer1),
                 "encoder.feature_projection.weight": torch.tensor([True, False])})


def test_per_layer_iou_across_languages_on_hand_made_masks():
    T, F = True, False
    masks = {"l1": {0: _mask([F, F, T, T], [F, T, T, T])},
             "l2": {0: _mask([F, F, T, T], [F, F, T, T])},
             "l3": {0: _mask([T, T, F, F], [F, F, F, F])},
             "l4": {1: _mask([F, F, F, F], [F, F, F, F])}}  # no seed in common with the others: no pair
    summary = layer_iou_summary(masks)
    assert summary["layers"] == ["layer 0", "layer 1"] and summary["pairs"] == 3
    # layer 0: pairs IoU 1, 0, 0; layer 1: 1/2, 1/4, 2/4
    assert summary["mean"] == pytest.approx([1 / 3, (0.5 + 0.25 + 0.5) / 3])
    assert summary["min"] == pytest.approx([0.0, 0.25]) and summary["max"] == pytest.approx([1.0, 0.5])
    # random masks with those sparsities: layer 0 all at 1/2 -> 1/3; layer 1 (1/4,1/2) .2, (1/4,1) .25, (1/2,1) .5
    assert summary["random"] == pytest.approx([1 / 3, (0.2 + 0.25 + 0.5) / 3])
    assert layer_iou_summary({"l1": masks["l1"], "l4": masks["l4"]}) is None

    from parp.reports.plots import layer_iou_figure

    figure = layer_iou_figure({"omp": summary}, 0.5)
    mean_line, random_line = figure.axes[0].get_lines()
    assert list(mean_line.get_ydata()) == pytest.approx(summary["mean"])
    assert list(random_line.get_ydata()) == pytest.approx(summary["random"])
    band = figure.axes[0].collections[0].get_paths()[0].vertices[:, 1]  # min to max over pairs
    assert (band.min(), band.max()) == pytest.approx((0.0, 1.0))
    assert summary["seeds"] is None  # no language has two seeds

    # a second seed of l1: its two masks' per-layer IoU is what training noise alone leaves shared
    masks["l1"][1] = _mask([F, T, T, T], [F, T, T, F])
    summary = layer_iou_summary(masks)
    assert summary["seeds"] == pytest.approx([0.5, 0.5])  # pruned sets: layer 0 {0,1} vs {0}; layer 1 {0} vs {0,3}
    seeds_line = layer_iou_figure({"omp": summary}, 0.5).axes[0].get_lines()[-1]
    assert list(seeds_line.get_ydata()) == pytest.approx([0.5, 0.5])


def test_reprune_history_is_the_seed_mean_iou_with_the_start(tmp_path):
    rows = []
    for seed, ious in ((0, (0.9, 0.7)), (1, (0.8, 0.5))):
        row = _row("parp", "aa", seed, 0.3)
        (tmp_path / row["cell"]).mkdir(parents=True)
        reprunes = [{"step": step, "iou_with_previous": 0.9, "iou_with_start": iou} for step, iou in zip((5, 10), ious)]
        (tmp_path / row["cell"] / "run.json").write_text(json.dumps({"phases": [
            {"name": "finetune", "steps": 10, "reprunes": reprunes}]}))
        rows.append(row)
    old = _row("parp", "bb", 0, 0.3)  # a record of an older parp: IoU with the previous re-prune only
    (tmp_path / old["cell"]).mkdir(parents=True)
    (tmp_path / old["cell"] / "run.json").write_text(json.dumps({"phases": [
        {"name": "finetune", "reprunes": [{"step": 5, "iou_with_previous": 0.9}]}]}))
    histories, without = reprune_histories(rows + [old, _row("omp", "aa", 0, 0.3)], tmp_path)
    assert without == 1
    assert histories == {("parp", 0.5): {"aa": [(5, pytest.approx(0.85)), (10, pytest.approx(0.6))]}}


def _masked_sweep(folder, languages, sparsities=(0.5,), model="tiny"):
    """Result rows with OMP masks of a tiny model's prunable weights (slightly different per language)."""
    params = prunable_parameters(tiny_ctc_model("wav2vec2", num_hidden_layers=2))
    rows = []
    for index, language in enumerate(languages):
        torch.manual_seed(index)
        weights = {n: p.detach() + 0.3 * torch.randn_like(p) * p.detach().abs().mean() for n, p in params.items()}
        for s in sparsities:
            path = f"masks/{language}-{s}.safetensors"
            Mask.magnitude(weights, s).save(folder / path)
            rows.append(_row("omp", language, 0, 0.4, mask=path, sparsity=s, iou_with_pretrained_mask=0.6))
    write_results(folder, rows)
    (folder / "sweep.json").write_text(json.dumps({"model": model}))
    return folder


def test_extra_masks_of_another_sweep_join_the_mask_analyses(tmp_path):
    here = _masked_sweep(tmp_path / "phones", ["aa", "bb"])
    mboshi = _masked_sweep(tmp_path / "mboshi", ["mboshi"], sparsities=(0.3, 0.5))
    assert main(["report", "--results", str(here), "--output_dir", str(tmp_path / "rep"),
                 "--extra_masks", f"mb={mboshi}"]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert f"mb from `{mboshi}`" in text
    assert "| mb (extra) | omp | 0.5 | 0.600 |" in text and "| mb (extra) | omp | 0.3 |" not in text
    assert "| mb | omp |" not in text  # its error rates stay out of the results table
    from parp.reports.extra_masks import extra_mask_rows
    from parp.reports.tables import Tables
    from parp.results import read_results

    rows = read_results(here)
    tables = Tables(rows, here, extra_rows=extra_mask_rows([f"mb={mboshi}"], here, rows))
    info = tables.cross_language_iou()[("omp", 0.5)]
    assert info["languages"] == ["aa", "bb", "mb"]
    own, theirs = Mask.load(here / "masks/aa-0.5.safetensors"), Mask.load(mboshi / "masks/mboshi-0.5.safetensors")
    assert info["matrix"][0][2] == pytest.approx(own.iou(theirs))

    with pytest.raises(ConfigError, match="already a language"):
        build_report(here, tmp_path / "rep3", extra_masks=[f"aa={mboshi}"])
    with pytest.raises(ConfigError, match="does not exist"):
        build_report(here, tmp_path / "rep3", extra_masks=[f"mb={tmp_path / 'nowhere'}"])
    other = _masked_sweep(tmp_path / "other-model", ["xx"], model="another")
    with pytest.raises(ConfigError, match="masks of different encoders"):
        build_report(here, tmp_path / "rep3", extra_masks=[f"xx={other}"])
