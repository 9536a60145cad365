"""parp demo --quick: synthesis, the sweep (none, OMP, PARP) and the report, end to end on a tiny model."""

from __future__ import annotations

from helpers import tiny_model_dir

from parp.cli import main
from parp.results import read_results


def test_quick_demo_runs_end_to_end_and_writes_the_report(tmp_path, capsys):
    model = tiny_model_dir(tmp_path / "model")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--model", str(model), "--output-dir", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "[1/5] fi none s=0 seed=0: running" in printed and "(dense phase reused)" in printed
    rows = read_results(out / "results.csv")
    assert sorted((r["method"], r["sparsity_target"]) for r in rows) == [
        ("none", 0.0), ("omp", 0.5), ("omp", 0.7), ("parp", 0.5), ("parp", 0.7)]
    assert (out / "data" / "fi" / "train.tsv").is_file()
    report = (out / "report.md").read_text()
    assert "Do the paper's claims hold here?" in report
    for name in ("error_vs_sparsity_fi.png", "cost.png", "per_layer_sparsity_s0.5.png", "per_layer_sparsity_s0.7.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same command again resumes: nothing is synthesised or trained twice
    assert main(["demo", "--quick", "--model", str(model), "--output-dir", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.count("completed earlier, skipped") == 5
