"""The report's Markdown, whole, against a committed golden file: the one test of its wording (the other report
tests check the verdicts as data). A small fixed results table in tests/fixtures/report_golden/."""

from __future__ import annotations

import os
from pathlib import Path

from parp.reports.report import build_report

GOLDEN = Path(__file__).parent / "fixtures" / "report_golden"


def test_report_markdown_matches_the_golden_file(tmp_path):
    path = build_report(GOLDEN / "results.json", tmp_path, budget_results=[GOLDEN / "budget.json"])
    text = path.read_text(encoding="utf-8")
    if os.environ.get("PARP_UPDATE_GOLDEN"):  # a deliberate rewording: rewrite, then read the diff
        (GOLDEN / "report.md").write_text(text, encoding="utf-8")
    expected = (GOLDEN / "report.md").read_text(encoding="utf-8")
    assert text.splitlines() == expected.splitlines()
    # every figure it links was written next to it
    assert {"cost.png", "error_vs_sparsity_aa.png", "transfer_s0.5.png"} <= {p.name for p in tmp_path.glob("*.png")}
