"""The typed run record: one reader of run.json, and sweep folders written before it still resume and report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from parp.errors import ConfigError
from parp.experiments.grid import SweepConfig
from parp.experiments.sweep import run_sweep
from parp.results import read_results
from parp.records import RunRecord, is_completed, load_run, read_run

OLD_SWEEP = Path(__file__).parent / "fixtures" / "sweep_before_records"
SIZE_COLUMNS = {"dense_bytes", "compressed_bytes"}  # the fixture keeps no weights


def test_a_written_record_reads_back_with_phases_and_cost(tmp_path):
    record = RunRecord(tmp_path / "run.json", "prune", {"prune": {"sparsity": 0.5}})
    with record.phase("finetune-1") as phase:
        phase.update(steps=3, total_steps=3, final={"wer": 0.5}, reused_from="elsewhere", reused_wall_seconds=7.0)
    with record.phase("prune") as phase:
        phase.update(sparsity=0.5)
    with record.phase("finetune-2") as phase:
        phase.update(steps=2, total_steps=5, earlier_wall_seconds=4.0)
    assert read_run(tmp_path).status == "running" and not is_completed(tmp_path)
    record.finish()

    run = load_run(tmp_path)
    assert run.completed and is_completed(tmp_path) and run.command == "prune"
    assert run.section("prune") == {"sparsity": 0.5} and run.section("data") == {}
    assert [p.name for p in run.phases] == ["finetune-1", "prune", "finetune-2"]
    first, prune, second = run.phases
    assert first.is_training and first.reused and first.cost_seconds == 7.0 and first.final == {"wer": 0.5}
    assert not prune.is_training and not prune.reused
    assert second.total_steps == 5 and second.elsewhere_seconds == 4.0
    assert second.cost_seconds == pytest.approx(second.facts["wall_seconds"] + 4.0)
    assert run.phase("prune") is prune or run.phase("prune").facts == prune.facts
    assert run.cost_seconds == pytest.approx(run.wall_seconds + 11.0, abs=1e-3)


def test_missing_or_half_written_records_are_none_and_one_line_errors(tmp_path):
    assert read_run(tmp_path) is None and not is_completed(tmp_path)
    (tmp_path / "run.json").write_text('{"status": "compl')  # a killed writer
    assert read_run(tmp_path) is None and not is_completed(tmp_path)
    with pytest.raises(ConfigError, match="--dense-checkpoint .*no readable run.json"):
        load_run(tmp_path, "--dense-checkpoint")


@pytest.fixture()
def old_sweep(tmp_path, monkeypatch):
    shutil.copytree(OLD_SWEEP, tmp_path / "sweep")
    monkeypatch.chdir(tmp_path)  # the fixture's records hold paths relative to its parent folder
    return tmp_path / "sweep"


def _old_config() -> SweepConfig:
    """The settings make_fixture.py ran the fixture with."""
    return SweepConfig(output_dir="sweep", languages=["aa=corpus-aa/train.tsv", "bb=corpus-bb/train.tsv"],
                       methods=["omp", "parp"], sparsities=[0.5], model="model", mask_time_prob=0.0,
                       ctc_head_init="random", max_steps=2, learning_rate=5e-2, warmup_steps=0, eval_every=0,
                       save_every=0, max_batch_seconds=4, valid_fraction=0.25, progress=False, prune_every=1)


def _old_columns(rows, old):
    """The columns the old file had, less the sizes of weights the fixture does not keep."""
    keys = set(old[0]) - SIZE_COLUMNS
    return [{k: v for k, v in r.items() if k in keys} for r in rows]


def test_a_sweep_written_before_the_record_type_resumes_with_every_cell_skipped(old_sweep, capsys):
    before = read_results(old_sweep / "results.csv")
    records = {p: p.read_bytes() for p in old_sweep.glob("cells/**/run.json")}
    assert len(records) == 6

    rows = run_sweep(_old_config())  # no data and no model exist here: running any cell would fail

    assert capsys.readouterr().out.count("completed earlier, skipped") == 6
    assert {p: p.read_bytes() for p in old_sweep.glob("cells/**/run.json")} == records
    # the rows rebuilt from the old records are the rows the old code wrote (costs, reuse, steps, masks)
    assert _old_columns(read_results(old_sweep / "results.csv"), before) == _old_columns(before, before)
    old_json = json.loads((OLD_SWEEP / "results.json").read_text())
    assert _old_columns(rows, old_json) == _old_columns(old_json, old_json)
    assert all(r["iou_with_pretrained_mask"] is None for r in rows)  # not in the old records: not made up
    omp = next(r for r in rows if r["method"] == "omp" and r["language"] == "aa")
    assert omp["reused_dense"] is True and omp["finetune_steps"] == 4
    assert omp["wall_seconds"] > omp["phase_wall_seconds"]["finetune-2"]


def test_a_sweep_written_before_the_record_type_reports(old_sweep):
    from parp.cli import main

    assert main(["report", "--results", str(old_sweep / "results.csv"), "--output-dir", "report"]) == 0
    text = Path("report/report.md").read_text()
    assert "## Mask overlap across languages" in text and "| parp | 0.5 |" in text
    with open(old_sweep / "results.csv", newline="") as f:
        assert "iou_with_pretrained_mask" not in next(csv.reader(f))  # an old file: the report copes without it
