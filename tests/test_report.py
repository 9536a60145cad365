"""parp report: Markdown + valid PNG plots from a results file and mask files, claims judged from the data.

The verdicts are checked as data (``Tables.claims``: a ``ClaimVerdict`` per claim); their wording is covered once, by
the golden report of ``test_report_golden.py``."""

from __future__ import annotations

import re
import statistics

import pytest
import torch

from parp.cli import main
from parp.results import write_results
from parp.models import tiny_ctc_model
from parp.reports.verdicts import Verdict
from parp.sparsity import Mask, prunable_parameters

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def claims_of(folder):
    """The report's verdicts on a sweep folder, by claim letter."""
    from parp.reports.tables import Tables
    from parp.results import read_results

    return {c.claim: c for c in Tables(read_results(folder / "results.csv"), folder).claims()}


def part(claim, subject):
    return next(p for p in claim.parts if p.subject == subject)


def _row(method, language, sparsity, wer, steps, wall, mask, seed=0, **extra):
    return {"method": method, "language": language, "sparsity_target": sparsity, "sparsity_achieved": sparsity,
            "seed": seed, "wer": wer, "cer": wer / 3, "finetune_steps": steps, "finetunings": steps // 100,
            "wall_seconds": wall, "phase_wall_seconds": {"finetune": wall}, "dense_bytes": 4_000_000,
            "compressed_bytes": int(4_000_000 * (1 - sparsity / 2)), "reused_dense": method == "omp",
            "iou_with_language_mask": None, "mask": mask, "cell": f"cells/{language}/{method}", **extra}


@pytest.fixture()
def sweep_dir(tmp_path):
    """Two languages, two seeds (spread ~0.0014): PARP at or below OMP at half the steps, PARP beats the dense model
    at 0.5, masks overlap strongly."""
    params = prunable_parameters(tiny_ctc_model("wav2vec2", num_hidden_layers=3))
    base = {n: p.detach().clone() for n, p in params.items()}
    rows = []
    for li, language in enumerate(("aa", "bb")):
        torch.manual_seed(li)
        shifted = {n: w + 0.05 * torch.randn_like(w) * w.abs().mean() for n, w in base.items()}  # small change
        multi_path = "masks/multi-0.5.safetensors"
        Mask.magnitude(base, 0.5).save(tmp_path / multi_path)
        for s in (0.5, 0.8):
            for method in ("parp", "omp"):
                Mask.magnitude(shifted, s).save(tmp_path / f"masks/{language}-{method}-{s}.safetensors")
        for seed, noise in ((0, 0.0), (1, 0.002)):
            rows.append(_row("none", language, 0.0, 0.40 + noise, 100, 10.0, None, seed=seed))
            for s in (0.5, 0.8):
                for method, wer in (("parp", 0.38 if s == 0.5 else 0.53), ("omp", 0.39 if s == 0.5 else 0.54)):
                    rows.append(_row(method, language, s, wer + noise, 100 if method == "parp" else 200,
                                     11.0 if method == "parp" else 21.0,
                                     f"masks/{language}-{method}-{s}.safetensors", seed=seed))
            rows.append(_row("parp-multi", language, 0.5, 0.37 + noise, 100, 15.0, multi_path, seed=seed,
                             iou_with_language_mask=0.9))
    write_results(tmp_path, rows)
    return tmp_path


def test_multilingual_runs_of_two_budgets_sit_side_by_side(sweep_dir):
    from parp.reports.report import build_report
    from parp.results import read_results

    rows = read_results(sweep_dir / "results.csv")
    rows += [{**r, "method": "parp-multi-1000", "finetune_steps": 1000, "wer": r["wer"] - 0.1}
             for r in rows if r["method"] == "parp-multi" and r["seed"] == 0]  # one seed: judged by own's spread
    write_results(sweep_dir, rows)
    text = build_report(sweep_dir / "results.csv").read_text()
    section = text[text.index("## One multilingual subnetwork"):]
    assert "`parp-multi`: 100 updates, `parp-multi-1000`: 1000 updates" in section
    assert "| WER own PARP | WER parp-multi | WER parp-multi-1000 |" in section
    assert "| aa | 0.5 | 0.381 | 0.371 | 0.270 |" in section
    assert "same fine-tuning schedule (but for the updates of `parp-multi-N`: N)." in text
    claim = claims_of(sweep_dir)["e"]
    assert [p.subject for p in claim.parts] == ["parp-multi", "parp-multi-1000"]
    assert claim.verdict is Verdict.HOLDS and claim.metric == "wer" and claim.figures["own_updates"] == 100
    for run, updates in (("parp-multi", 100), ("parp-multi-1000", 1000)):
        multi = part(claim, run)
        assert multi.verdict is Verdict.HOLDS and multi.figures["updates"] == updates
        assert len(multi.comparisons) == 2 and all(c.separable and c.diff < 0 for c in multi.comparisons)
        assert {c.sides for c in multi.comparisons} == {(run, "parp")}
    assert statistics.fmean(c.diff for c in part(claim, "parp-multi").comparisons) == pytest.approx(-0.010)


def test_report_has_every_plot_as_a_valid_png_and_states_the_claims(sweep_dir):
    from PIL import Image

    assert main(["report", "--results", str(sweep_dir / "results.csv"), "--output-dir", str(sweep_dir / "rep")]) == 0
    text = (sweep_dir / "rep" / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"error_vs_sparsity_aa.png", "error_vs_sparsity_bb.png", "cost.png", "per_layer_sparsity_s0.5.png", "per_layer_sparsity_s0.8.png",
            "mask_iou_parp_s0.5.png", "mask_iou_omp_s0.8.png"} <= set(images)
    for name in images:
        path = sweep_dir / "rep" / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        with Image.open(path) as image:
            image.verify()
        import matplotlib.image

        assert matplotlib.image.imread(path).ndim == 3
    claims = claims_of(sweep_dir)
    assert list(claims) == ["a", "b", "c", "e"]  # (d) only with transfer cells
    a = claims["a"]
    assert a.verdict is Verdict.HOLDS and a.figures["steps_ratio"] == pytest.approx(0.5)
    assert {(c.language, c.sparsity) for c in a.comparisons} == {(x, s) for x in ("aa", "bb") for s in (0.5, 0.8)}
    assert all(c.sides == ("parp", "omp") and c.diff == pytest.approx(-0.01) and c.separable for c in a.comparisons)
    b = claims["b"]
    assert b.verdict is Verdict.HOLDS and [p.subject for p in b.parts] == ["aa", "bb"]
    held = [c.sparsity for c in part(b, "aa").with_sides("parp", "none") if c.separable and c.diff < 0]
    assert held == [0.5] and part(b, "aa").figures["unpruned"] == pytest.approx(0.401)
    c = claims["c"]
    assert c.verdict is Verdict.HOLDS and all(p.verdict is Verdict.HOLDS for p in c.parts)
    assert part(c, "parp").figures["random"] == pytest.approx(1 / 3)  # s/(2-s) at s = 0.5
    assert "| aa | parp | 0.5 | 0.5000 | 0.381 ± 0.001 |" in text  # mean ± spread across seeds
    assert "| aa | parp | 0.5 |" in text and "## One multilingual subnetwork" in text


def test_claims_that_fail_are_said_to_fail(sweep_dir):
    from parp.results import read_results
    from parp.reports.report import build_report

    rows = read_results(sweep_dir / "results.csv")
    for row in rows:
        if row["method"] == "parp":
            row["wer"] = 0.9  # far worse than OMP and than the unpruned model
    write_results(sweep_dir, rows)
    text = build_report(sweep_dir / "results.csv").read_text()
    claims = claims_of(sweep_dir)
    assert claims["a"].verdict is Verdict.FAILS and not claims["a"].figures["not_cheaper"]
    assert claims["b"].verdict is Verdict.FAILS and all(p.verdict is Verdict.FAILS for p in claims["b"].parts)
    assert "No model learned" not in text
    for row in rows:
        row["cer"] = 1.0
    write_results(sweep_dir, rows)
    assert "No model learned to emit text" in build_report(sweep_dir / "results.csv").read_text()


def test_one_seed_is_not_separable_however_large_the_gap(sweep_dir):
    """The demo once said claim (b) "holds" on CER 0.820 vs 0.838 from one seed: without a spread, nothing is."""
    from parp.results import read_results

    rows = [r for r in read_results(sweep_dir / "results.csv") if r["seed"] == 0]
    write_results(sweep_dir, rows)
    claims = claims_of(sweep_dir)
    assert claims["a"].verdict is Verdict.NOT_SEPARABLE and all(c.spread is None for c in claims["a"].comparisons)
    assert claims["b"].verdict is Verdict.NOT_SEPARABLE
    beats = part(claims["b"], "aa").with_sides("parp", "none")
    assert beats[0].sparsity == 0.5 and beats[0].diff == pytest.approx(-0.020) and beats[0].spread is None


def test_differences_within_the_seed_spread_are_not_separable(sweep_dir):
    from parp.results import read_results

    rows = read_results(sweep_dir / "results.csv")
    for row in rows:  # seed-to-seed spread of 0.1 swamps the 0.01-0.02 gaps between methods
        row["wer"] += 0.15 if row["seed"] == 1 else 0.0
    write_results(sweep_dir, rows)
    claims = claims_of(sweep_dir)
    assert claims["a"].verdict is Verdict.NOT_SEPARABLE and claims["b"].verdict is Verdict.NOT_SEPARABLE
    assert all(c.spread > abs(c.diff) for c in claims["a"].comparisons)


def test_report_without_results_is_one_clear_error(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "nope.csv")]) == 2
    assert "no results file" in capsys.readouterr().err


def test_claims_use_cer_when_every_wer_is_saturated(sweep_dir):
    from parp.results import read_results

    rows = read_results(sweep_dir / "results.csv")
    for row in rows:  # short runs: no word right anywhere, but characters differ by method
        row["wer"] = 1.0
        row["cer"] = {"none": 0.9, "omp": 0.8}.get(row["method"], 0.95)
    write_results(sweep_dir, rows)
    claims = claims_of(sweep_dir)
    assert claims["a"].metric == "cer" and claims["a"].verdict is Verdict.FAILS
    assert all(c.diff == pytest.approx(0.15) for c in claims["a"].comparisons)  # CER 0.95 vs 0.8


def test_overlap_is_set_against_the_pretrained_start(sweep_dir):
    """Masks read off slightly changed weights stay close to the pretrained magnitude mask, and the report says so.

    The IoU with the pretrained start is recorded by each cell (``MethodContext.iou_with_pretrained``: the same
    computation here, on the fixture's pretrained weights); the report reads it and loads no model."""
    from parp.results import read_results

    base = {n: p.detach() for n, p in prunable_parameters(tiny_ctc_model("wav2vec2", num_hidden_layers=3)).items()}
    rows = read_results(sweep_dir / "results.csv")
    for row in rows:
        if row["method"] in ("parp", "omp"):
            mask = Mask.load(sweep_dir / row["mask"])
            row["iou_with_pretrained_mask"] = mask.iou(Mask.magnitude(base, row["sparsity_target"]))
    write_results(sweep_dir, rows)
    assert main(["report", "--results", str(sweep_dir / "results.csv"), "--output-dir", str(sweep_dir / "rep")]) == 0
    text = (sweep_dir / "rep" / "report.md").read_text()
    row = re.search(r"\| parp \| 0\.5 \| (\d\.\d{3}) \| 1\.000 ± 0\.000 \| (\d\.\d{3}) \| 0\.333 \|", text)
    assert row and float(row.group(2)) > 0.8, text
    overlap = claims_of(sweep_dir)["c"]
    assert all(p.figures["pretrained"] > 0.8 and p.figures["start_explains"] for p in overlap.parts)


def test_phone_targets_are_reported_as_per(sweep_dir):
    """Rows of a phone sweep carry PER (no WER/CER): every table, plot label and claim says PER."""
    from parp.results import read_results
    from parp.reports.report import build_report

    rows = read_results(sweep_dir / "results.csv")
    for row in rows:
        row["per"], row["wer"], row["cer"] = row["wer"], None, None
    write_results(sweep_dir, rows)
    assert read_results(sweep_dir / "results.csv")[0]["per"] == rows[0]["per"]  # the per column round-trips
    text = build_report(sweep_dir / "results.csv").read_text()
    assert "| language | method | target | achieved | PER | steps |" in text
    assert "| language | target | PER own PARP | PER parp-multi | IoU parp-multi with own PARP mask |" in text
    assert claims_of(sweep_dir)["a"].metric == "per" and "WER" not in text and "CER" not in text
    assert "| aa | parp | 0.5 | 0.5000 | 0.381 ± 0.001 |" in text


def test_error_bars_only_from_two_seeds_and_the_caption_says_how_many(sweep_dir):
    from parp.results import read_results
    from parp.reports.markdown import seed_caption
    from parp.reports.stats import error_bars

    assert error_bars([[0.1], [0.2]]) is None
    assert error_bars([[0.1, 0.3], [0.2, 0.2]]) == [pytest.approx(0.1414, abs=1e-3), 0.0]
    assert error_bars([[0.1], [0.2, 0.3]]) == [0.0, pytest.approx(0.0707, abs=1e-3)]  # a bar only where 2 seeds
    assert seed_caption({1}) == "mean of 1 seed per point; no error bars (fewer than 2 seeds per point)"
    assert seed_caption({1, 2}).endswith("where a point has 2 or more (none on 1-seed points)")
    assert main(["report", "--results", str(sweep_dir / "results.csv"), "--output-dir", str(sweep_dir / "r2")]) == 0
    text = (sweep_dir / "r2" / "report.md").read_text()
    assert "*aa: WER/CER vs sparsity; mean of 2 seeds per point; error bars: ±1 std over seeds.*" in text
    rows = read_results(sweep_dir / "results.csv")
    assert {r["seed"] for r in rows} == {0, 1}
    write_results(sweep_dir, [r for r in rows if r["seed"] == 0])
    assert main(["report", "--results", str(sweep_dir / "results.csv"), "--output-dir", str(sweep_dir / "r1")]) == 0
    text = (sweep_dir / "r1" / "report.md").read_text()
    assert "*aa: WER/CER vs sparsity; mean of 1 seed per point; no error bars (fewer than 2 seeds per point).*" in text


def test_iou_heatmap_scales_on_off_diagonal_cells():
    from parp.reports.plots import iou_heatmap

    fig = iou_heatmap([[1.0, 0.62, 0.70], [0.62, 1.0, 0.66], [0.70, 0.66, 1.0]], ["a", "b", "c"], "t", random=0.33)
    image = fig.axes[0].images[0]
    assert image.norm.vmin == pytest.approx(0.33) and image.norm.vmax == pytest.approx(0.70)
    assert image.get_array().mask.diagonal().all()  # the 1.0 diagonal is not on the scale
    fig = iou_heatmap([[1.0, 0.62], [0.62, 1.0]], ["a", "b"], "t")
    assert fig.axes[0].images[0].norm.vmax < 1.0


def test_per_layer_grid_is_layers_by_tensor_types_with_one_panel_per_method(sweep_dir):
    from parp.reports.plots import per_layer_figure
    from parp.reports.tables import tensor_type

    assert tensor_type("wav2vec2.encoder.layers.3.feed_forward.output_dense.weight") == "ffn out"
    panels = {"parp": {("layer 0", "q"): 0.4, ("layer 0", "k"): 0.6, ("layer 1", "q"): 0.5, ("layer 1", "k"): 0.5},
              "omp": {("layer 0", "q"): 0.5, ("layer 0", "k"): 0.5, ("layer 1", "q"): 0.7, ("layer 1", "k"): 0.3}}
    fig = per_layer_figure(panels, 0.5)
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heatmaps] == ["parp", "omp"]
    grid = heatmaps[1].images[0].get_array()
    assert grid.shape == (2, 2) and grid[1, 0] == pytest.approx(0.2)  # omp layer 1 q: 0.7 - target
    assert heatmaps[0].images[0].norm.vmin == pytest.approx(-0.2)  # one symmetric scale for every panel


def test_equal_budget_section_pairs_parp_and_omp_at_the_same_total_updates(sweep_dir, tmp_path):
    """OMP with its fine-tuning split in two (2 x 50 = 100 updates) faces PARP's 100; PARP with 200 faces OMP's 200."""
    from parp.reports.report import build_report

    budget = tmp_path / "budget"
    budget.mkdir()
    rows = []
    for seed, noise in ((0, 0.0), (1, 0.003)):
        rows.append(_row("omp", "aa", 0.5, 0.60 + noise, 100, 10.0, None, seed=seed))  # cer = wer / 3 = 0.2
        rows.append(_row("parp", "aa", 0.5, 0.30 + noise, 200, 20.0, None, seed=seed))  # cer 0.1
    write_results(budget, rows)
    text = build_report(sweep_dir / "results.csv", sweep_dir / "rep", budget_results=[budget]).read_text()
    assert "## PARP and OMP at equal budgets" in text
    assert "| aa | 0.5 | omp | 100 | 0.200 ± 0.001 | 2 |" in text
    assert "| aa | 0.5 | parp | 200 | 0.100 ± 0.001 | 2 |" in text
    # main sweep: PARP 100 updates CER 0.38/3; budget sweep: OMP 100 updates CER 0.2 -> PARP better beyond the spread
    from parp.reports.tables import Tables
    from parp.results import read_results

    verdicts = Tables(read_results(sweep_dir), sweep_dir).claim_equal_budget(read_results(budget))
    assert [(v.comparisons[0].language, v.comparisons[0].sparsity, v.comparisons[0].updates) for v in verdicts] == [
        ("aa", 0.5, 100), ("aa", 0.5, 200)]
    assert all(v.verdict is Verdict.HOLDS and v.metric == "cer" for v in verdicts)
    assert [v.comparisons[0].diff for v in verdicts] == [pytest.approx(-0.0735), pytest.approx(-0.0298, abs=1e-4)]
    assert sum(line.startswith("- aa 0.5, ") for line in text.splitlines()) == 2  # one line per verdict
    assert "## PARP and OMP at equal budgets" not in build_report(sweep_dir / "results.csv").read_text()


def test_masks_of_the_methods_are_compared_with_each_other_across_seeds_and_with_pretrained(sweep_dir):
    from parp.results import read_results
    from parp.reports.report import build_report
    from parp.reports.tables import Tables

    rows = read_results(sweep_dir / "results.csv")
    for row in rows:
        if row["method"] == "omp" and row["seed"] == 1 and row["sparsity_target"] == 0.5:  # another mask for seed 1
            row["mask"] = row["mask"].replace("omp", "parp").replace("-0.5", "-0.8")
        if row["method"] == "parp":
            row["iou_with_pretrained_mask"] = 0.75
    write_results(sweep_dir, rows)
    data = Tables(rows, sweep_dir).method_mask_overlap()
    info = data[("aa", 0.5)]
    # seed 0: PARP and OMP share one mask file (IoU 1); seed 1: OMP carries the 0.8 mask, a superset of pruned set
    parp05 = Mask.load(sweep_dir / "masks/aa-parp-0.5.safetensors")
    parp08 = Mask.load(sweep_dir / "masks/aa-parp-0.8.safetensors")
    assert info["pairs"][("parp", "omp")] == pytest.approx([1.0, parp05.iou(parp08)])
    assert parp05.iou(parp08) < 0.9
    assert info["across_seeds"]["parp"] == pytest.approx(1.0)
    assert info["across_seeds"]["omp"] == pytest.approx(parp05.iou(parp08))
    assert info["pretrained"]["parp"] == pytest.approx(0.75) and info["pretrained"]["omp"] is None
    text = build_report(sweep_dir / "results.csv").read_text()
    assert "## Masks of the methods" in text and "| aa | 0.5 | parp vs pretrained | 0.750 |" in text
    assert "| aa | 0.5 | random vs random | 0.333 |" in text


def test_claims_use_cer_when_words_are_almost_never_right(sweep_dir):
    """WER of 0.985-1.005 (the Mboshi sweep at 600 updates) is noise around saturation: CER carries the claims."""
    from parp.results import read_results

    rows = read_results(sweep_dir / "results.csv")
    for i, row in enumerate(rows):
        row["wer"] = 0.985 + 0.004 * (i % 5)
    write_results(sweep_dir, rows)
    assert claims_of(sweep_dir)["a"].metric == "cer"


def test_metric_option_judges_the_claims_on_the_named_error_rate(sweep_dir, capsys):
    """--metric cer: where words are sometimes right (WER 0.38-0.54, so auto picks WER) the claims still go on CER."""
    from parp.reports.tables import Tables
    from parp.results import read_results

    rows = read_results(sweep_dir / "results.csv")
    for row in rows:  # CER ranks the methods the other way round from WER
        row["cer"] = {"none": 0.2, "omp": 0.1}.get(row["method"], 0.3)
    write_results(sweep_dir, rows)
    assert claims_of(sweep_dir)["a"].metric == "wer"
    claims = {c.claim: c for c in Tables(rows, sweep_dir, metric="cer").claims()}
    assert claims["a"].metric == "cer" and claims["a"].verdict is Verdict.FAILS
    assert main(["report", "--results", str(sweep_dir), "--metric", "cer", "--output_dir", str(sweep_dir / "r")]) == 0
    assert "PARP − OMP CER" in (sweep_dir / "r" / "report.md").read_text()
    assert main(["report", "--results", str(sweep_dir), "--metric", "per"]) == 2
    assert capsys.readouterr().err.strip().endswith("--metric per: no result row has a PER (phone targets have PER, "
                                                    "character targets WER and CER)")


def test_several_results_merge_later_rows_over_earlier_ones_with_their_own_mask_paths(sweep_dir):
    """A committed copy of lost cells first, then the live folder: the live rows win, old masks still resolve."""
    from parp.results import read_results
    from parp.reports.report import merged_results

    rows = read_results(sweep_dir / "results.csv")
    live = sweep_dir / "live"
    rerun = [dict(r, cer=0.123) for r in rows if r["language"] == "aa" and r["method"] == "parp"]
    for r in rerun:
        r["mask"] = None
    live.mkdir()
    write_results(live, rerun)
    merged, base = merged_results([str(sweep_dir / "results.csv"), str(live)])
    assert base == live and len(merged) == len(rows)
    by_cell = {(r["language"], r["method"], r["sparsity_target"], r["seed"]): r for r in merged}
    assert by_cell[("aa", "parp", 0.5, 1)]["cer"] == 0.123  # the later source's row
    old = by_cell[("bb", "omp", 0.8, 0)]
    assert old["cer"] == pytest.approx(0.54 / 3) and (live / old["mask"]).resolve().is_file()
    assert main(["report", "--results", str(sweep_dir / "results.csv"), str(live),
                 "--output-dir", str(sweep_dir / "merged")]) == 0
    assert "| aa | parp | 0.5 | 0.5000 | 0.381 ± 0.001 | 0.123 ± 0.000 |" in (sweep_dir / "merged" / "report.md").read_text()


def test_claim_c_sets_the_languages_overlap_against_two_seeds_of_one_language(sweep_dir):
    """Issue 26: the IoU across languages means little until set against two seeds of ONE language (training noise
    alone). The fixture's seeds share one mask per language (seed IoU 1.0), its languages do not: languages differ
    more than seeds, beyond the spread; a difference within the spread is said to be not separable."""
    from parp.reports.markdown import _languages_vs_seeds, render_claim
    from parp.reports.stats import Difference

    for p in claims_of(sweep_dir)["c"].parts:
        f = p.figures
        assert f["across_seeds"] == pytest.approx(1.0) and f["seed_languages"] == 2
        assert f["languages_vs_seeds"].diff == pytest.approx(f["mean"] - 1.0) and f["languages_vs_seeds"].separable
    text = render_claim(claims_of(sweep_dir)["c"])
    assert "two seeds of one language overlap 1.000 ± 0.000 (mean over 2 language(s))" in text
    assert "languages differ more than seeds do, beyond the spread" in text
    close = {"across_seeds": 0.43, "across_seeds_sd": 0.02, "seed_languages": 3,
             "languages_vs_seeds": Difference(-0.006, 0.017)}
    assert _languages_vs_seeds(close).endswith("languages differ no more than seeds do (not separable)")
