"""Issue 27's two options: nested data-size subsets (``--train-hours``) and training to convergence
(``--early-stopping-patience``), which exports and scores the best model as it will ship."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from helpers import Killed, kill_at, run_tiny_prune, synthetic_corpus, tiny_model_dir
from safetensors.torch import load_file

from parp.data import DataArguments
from parp.data.arguments import load_utterances
from parp.data.manifest import read_manifest
from parp.data.splits import hours_subset, split_train_valid
from parp.errors import ConfigError
from parp.models import ModelArguments
from parp.records import load_run

ROOT = Path(__file__).resolve().parents[1]
from parp.sparsity import Mask
from parp.training.finetune import prepare_finetune
from parp.training.hooks import TrainingHook
from parp.training.loop import TrainConfig, train, validate_train_config


def _hours(utterances) -> float:
    return sum(u.duration for u in utterances) / 3600


def _per_speaker(utterances) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for u in utterances:
        seconds[u.speaker] = seconds.get(u.speaker, 0.0) + u.duration
    return seconds


# ------------------------------------------------------------------------------------------- data-size subsets


def test_mboshi_subsets_are_nested_balanced_and_outside_validation(mboshi_dir):
    manifest = str(mboshi_dir / "train.tsv")
    subsets = {h: load_utterances(DataArguments(train_manifest=manifest, train_hours=h))
               for h in (0.167, 1.0, None)}
    paths = {h: {u.path for u in train} for h, (train, _, _) in subsets.items()}
    valid = {u.path for u in subsets[None][1]}
    assert paths[0.167] < paths[1.0] < paths[None]  # 10 min inside 1 h inside all
    assert not paths[None] & valid and all(v[1] == subsets[None][1] for v in subsets.values())
    for h in (0.167, 1.0):
        got = _hours(subsets[h][0])
        assert h <= got < h + 20 / 3600  # the first utterance past the budget is the last one taken
        taken, available = _per_speaker(subsets[h][0]), _per_speaker(subsets[None][0])
        # speakers take turns by audio time: each has as much as the others (within one clip) or all it has
        assert len(taken) == 3 and all(max(taken.values()) - t < 20 or t == available[s] for s, t in taken.items())
    again = load_utterances(DataArguments(train_manifest=manifest, train_hours=1.0))[0]
    assert [u.path for u in again] == [u.path for u in subsets[1.0][0]]  # deterministic


def test_subset_ignores_manifest_order_and_respects_length_limits(tmp_path):
    manifest = synthetic_corpus(tmp_path / "data", n=40, seconds=2.0)
    lines = manifest.read_text().splitlines()
    shuffled = tmp_path / "data" / "shuffled.tsv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    picks = [{u.path for u in load_utterances(DataArguments(train_manifest=str(m), train_hours=0.01,
                                                            max_seconds=2.2))[0]} for m in (manifest, shuffled)]
    assert picks[0] == picks[1]
    durations = {u.path: u.duration for u in read_manifest(str(manifest), "path", "text", "speaker")}
    assert all(durations[p] <= 2.2 for p in picks[0])


def test_subset_of_more_hours_than_the_corpus_is_all_of_it_and_zero_is_refused(tmp_path):
    utterances = read_manifest(str(synthetic_corpus(tmp_path, n=10)), "path", "text", "speaker")
    train, _ = split_train_valid(utterances, 0.2)
    assert hours_subset(train, 5.0, lambda u: u.duration) == train
    with pytest.raises(ConfigError, match="--train-hours"):
        hours_subset(train, 0.0, lambda u: u.duration)


# ------------------------------------------------------------------------------------------------ early stopping


class _Scripted:
    """Stands in for the CTC objective's validation: CER follows a script, so when the run must stop is known."""

    def __init__(self, objective, cers):
        self.objective, self.cers, self.calls = objective, list(cers), 0

    def __getattr__(self, name):
        return getattr(self.objective, name)

    def evaluate(self, model, loader, accelerator):
        cer = self.cers[min(self.calls, len(self.cers) - 1)]
        self.calls += 1
        return {"wer": cer, "cer": cer}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("converge")
    return synthetic_corpus(root / "data", n=16), tiny_model_dir(root / "model")


@pytest.fixture(scope="module")
def setup(corpus):
    manifest, model_dir = corpus
    return prepare_finetune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                            ModelArguments(model=str(model_dir), mask_time_prob=0.0), progress=False)


def _config(out: Path, **kw) -> TrainConfig:
    base = dict(output_dir=str(out), max_steps=20, eval_every=2, save_every=2, warmup_steps=0, learning_rate=5e-3,
                max_batch_seconds=3, progress=False, seed=1, log_every=1, early_stopping_patience=2,
                lr_schedule="constant")
    return TrainConfig(**{**base, **kw})


# validations at steps 2, 4, 6, 8: best at step 4, then two without improvement -> stop at step 8; the last entry
# is the final validation, of the restored best model, which scores what it scored at step 4
SCRIPT = [0.9, 0.5, 0.55, 0.6, 0.5]


def test_early_stopping_stops_and_the_best_model_is_the_result(setup, tmp_path):
    objective = _Scripted(setup.objective, SCRIPT)
    result = train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "run"), objective)
    assert (result.steps, result.best_step, result.stopped_early) == (8, 4, True)
    assert result.best_metrics["cer"] == 0.5
    model = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    best = load_file(str(tmp_path / "run" / "best" / "model.safetensors"))
    assert model.keys() == best.keys() and all(torch.equal(model[k], best[k]) for k in model)
    assert [h["step"] for h in result.validation_curve] == [2, 4, 6, 8, 8]  # the learning curve is kept


def test_min_delta_counts_small_gains_as_no_improvement(setup, tmp_path):
    objective = _Scripted(setup.objective, [0.9, 0.89, 0.88, 0.87])
    result = train(setup.new_model(1), setup.train_set, setup.valid_set,
                   _config(tmp_path / "run", early_stopping_min_delta=0.05, save_every=0), objective)
    assert (result.steps, result.best_step) == (6, 2)


def test_without_patience_nothing_stops_early(setup, tmp_path):
    objective = _Scripted(setup.objective, SCRIPT)
    result = train(setup.new_model(1), setup.train_set, setup.valid_set,
                   _config(tmp_path / "run", early_stopping_patience=0, max_steps=10, save_every=0), objective)
    assert (result.steps, result.stopped_early) == (10, False)


def test_patience_needs_validation_during_training():
    with pytest.raises(ConfigError, match="--early-stopping-patience"):
        validate_train_config(TrainConfig(early_stopping_patience=3, eval_every=0))
    with pytest.raises(ConfigError, match="--early-stopping-min-delta"):
        validate_train_config(TrainConfig(early_stopping_min_delta=-0.1))


def test_a_killed_early_stopping_run_resumes_to_the_same_stop_and_model(setup, tmp_path):
    straight = train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "a"),
                     _Scripted(setup.objective, SCRIPT))
    scripted = _Scripted(setup.objective, SCRIPT)
    with pytest.raises(Killed):  # killed at step 7: after the validations of steps 2, 4, 6 and checkpoint 6
        train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "b"), scripted,
              hooks=[kill_at(7)])
    assert scripted.calls == 3
    resumed = train(setup.new_model(1), setup.train_set, setup.valid_set, _config(tmp_path / "b"),
                    _Scripted(setup.objective, SCRIPT[3:]))  # the resumed process validates from step 8 on
    assert resumed.resumed_from_step == 6
    assert (resumed.steps, resumed.best_step, resumed.stopped_early) == (straight.steps, straight.best_step, True)
    a = load_file(str(tmp_path / "a" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


class _Watch(TrainingHook):
    name = "watch"

    def __init__(self):
        self.steps = []

    def on_step_end(self, state):
        self.steps.append(state.step)


def test_parp_with_early_stopping_exports_the_best_masked_model_at_exact_sparsity(corpus, tmp_path, monkeypatch):
    from parp.training import ctc

    calls = []

    def scripted(self, model, loader, accelerator):
        cer = SCRIPT[min(len(calls), len(SCRIPT) - 1)]
        calls.append(cer)
        return {"wer": cer, "cer": cer}

    monkeypatch.setattr(ctc.CTCObjective, "evaluate", scripted)
    watch = _Watch()
    from parp.data import DataArguments as D
    from parp.methods import PruneArguments, run_prune

    manifest, model_dir = corpus
    summary = run_prune(D(train_manifest=str(manifest), valid_fraction=0.25),
                        ModelArguments(model=str(model_dir), mask_time_prob=0.0),
                        _config(tmp_path / "parp", save_every=0),
                        PruneArguments(method="parp", sparsity=0.5, prune_every=3), extra_hooks=[watch])
    assert max(watch.steps) == 8  # stopped early
    assert summary["sparsity_achieved"] == pytest.approx(0.5, abs=1e-3) and summary["mask_sparsity"] == 0.5
    phase = load_run(tmp_path / "parp").phase("finetune")
    assert phase.facts["best_step"] == 4 and phase.facts["stopped_early"] is True
    model = load_file(str(tmp_path / "parp" / "model" / "model.safetensors"))
    best = load_file(str(tmp_path / "parp" / "finetune" / "best" / "model.safetensors"))
    mask = Mask.load(tmp_path / "parp" / "model" / "mask.safetensors")
    for name in mask:  # the exported model is the best validated one, whose zeros are the final mask
        assert torch.equal(model[name], best[name]), name
        assert torch.equal(model[name] != 0, mask[name].cpu()), name


def test_run_json_records_the_subset(corpus, tmp_path):
    manifest, model_dir = corpus
    run_tiny_prune(corpus, tmp_path, "none", _Watch(), steps=2)
    data = load_run(tmp_path / "none").data["data"]
    assert data["train_hours_requested"] is None and len(data["train_subset"]) == 16
    rows = list(csv.DictReader(open(manifest), delimiter="\t"))
    assert data["train_utterances"] < len(rows)


# ------------------------------------------------------------------------------------------- the sweep's axis


def test_a_sweep_over_data_sizes_keeps_each_size_apart_and_reports_it(tmp_path):
    from parp.experiments.cells import Cell
    from parp.experiments.grid import SweepConfig, validate_sweep
    from parp.experiments.sweep import run_sweep
    from parp.reports.report import build_report
    from parp.reports.tables import Tables
    from parp.results import read_results

    manifest = synthetic_corpus(tmp_path / "data", n=40, seconds=2.0)
    model = tiny_model_dir(tmp_path / "model")
    config = SweepConfig(output_dir=str(tmp_path / "sweep"), languages=[f"xx={manifest}"], methods=["omp"],
                         sparsities=[0.5], train_hours=["all", "0.01"], model=str(model), mask_time_prob=0.0,
                         max_steps=3, learning_rate=5e-2, warmup_steps=0, eval_every=1, early_stopping_patience=1,
                         save_every=0, max_batch_seconds=4, valid_fraction=0.25, progress=False)
    _, cells = validate_sweep(config)
    assert [(c.method, c.train_hours) for c in cells] == [("none", 0.01), ("omp", 0.01), ("none", None),
                                                          ("omp", None)]  # smallest first
    rows = run_sweep(config)
    by = {(r["method"], r["train_hours"]): r for r in read_results(tmp_path / "sweep" / "results.csv")}
    assert set(by) == {("none", 0.01), ("omp", 0.01), ("none", None), ("omp", None)} and len(rows) == 4
    small = load_run(Cell("xx", "omp", 0.5, 0, train_hours=0.01).directory(tmp_path / "sweep")).data["data"]
    whole = load_run(Cell("xx", "omp", 0.5, 0).directory(tmp_path / "sweep")).data["data"]
    assert small["train_hours_requested"] == 0.01 and small["train_utterances"] < whole["train_utterances"]
    assert by[("omp", 0.01)]["reused_dense"] and by[("omp", 0.01)]["cell"].startswith("cells/xx/h0.01/omp/")
    for key, row in by.items():  # which update won the scored (last) fine-tuning, as its record says
        phase = [p for p in load_run(tmp_path / "sweep" / row["cell"]).data["phases"] if "steps" in p][-1]
        assert (row["best_step"], row["stopped_early"]) == (phase["best_step"], phase["stopped_early"]), key
        assert 1 <= row["best_step"] <= 3 and isinstance(row["stopped_early"], bool)
    assert Tables(rows, tmp_path).languages == ["xx-0.01h", "xx-all"]  # compared within one size
    report = build_report(tmp_path / "sweep" / "results.csv")
    assert "vs sparsity per data size](error_vs_sparsity_by_size_xx.png)" in report.read_text()
    assert (report.parent / "error_vs_sparsity_by_size_xx.png").stat().st_size > 0
    assert "best step per seed" in report.read_text()
    cost = report.read_text().split("## Cost")[1].split("\n## ")[0]  # per data size: each has its own N(d)
    assert "| xx-0.01h | omp | 4 | 2.0 |" in cost and "| xx-all | none | 2 | 1.0 |" in cost
    with pytest.raises(ConfigError, match="train_hours"):
        validate_sweep(SweepConfig(languages=[f"xx={manifest}"], train_hours=["0"]))


def _probe_record(folder, curve, max_steps=6000, status="completed", metric="valid_cer"):
    folder.mkdir(parents=True)
    history = [{"step": step, metric: error} for step, error in curve]
    (folder / "run.json").write_text(json.dumps({
        "status": status, "arguments": {"train": {"max_steps": max_steps, "early_stopping_patience": 8}},
        "history": history + [history[-1]]}))  # the restored best model's final validation, at the stop step


def _convergence_script():
    """docs/results/converged/convergence.py, a script rather than a package module, loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convergence", ROOT / "docs/results/converged/convergence.py")
    convergence = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convergence)
    return convergence


def test_the_convergence_rule_takes_the_latest_best_step_over_two_stopped_seeds(tmp_path):
    """N(d) by docs/results/converged/convergence.py: probes and a sweep's unpruned cells with the probe schedule
    count; a cell of another schedule (a grid's N(d)-long cell) does not; one seed or a running one gives no N(d)."""
    convergence = _convergence_script()
    probes, sweep = tmp_path / "probe", tmp_path / "sweep"
    _probe_record(probes / "mboshi-h0.167-seed0", [(100, 0.9), (200, 0.70), (300, 0.72), (400, 0.71)])
    _probe_record(sweep / "cells/mboshi/h0.167/none/s0/seed1", [(100, 0.9), (200, 0.8), (300, 0.69), (400, 0.75)])
    _probe_record(sweep / "cells/mboshi/h0.167/none/s0/seed2", [(100, 0.5)], max_steps=1400)  # a grid cell
    _probe_record(sweep / "cells/tus/none/s0/seed0", [(100, 0.9), (200, 0.6)], metric="valid_per")
    _probe_record(sweep / "cells/tus/none/s0/seed1", [(100, 0.9), (200, 0.6), (300, 0.5)], status="running")
    convergence.main(str(probes), str(tmp_path / "out"), [str(sweep)])
    summary = json.loads((tmp_path / "out" / "convergence.json").read_text())
    assert summary["mboshi-h0.167"]["n_updates"] == 300  # seed 1's best, the later one
    assert sorted(summary["mboshi-h0.167"]["seeds"]) == ["0", "1"]
    assert summary["tus-hall"] == {"seeds": summary["tus-hall"]["seeds"], "n_updates": None,
                                   "all_seeds_stopped": False}
    assert summary["tus-hall"]["seeds"]["0"]["best_cer"] == 0.6  # PER for East Tusom's phones
    assert (tmp_path / "out" / "convergence.png").stat().st_size > 10_000


def test_a_kept_sweep_record_counts_as_a_probe_through_its_validation_curve(tmp_path):
    """records/ keeps a sweep cell's run.json only: no training log, its fine-tuning phase's validations instead."""
    convergence = _convergence_script()
    for seed, curve in ((0, [(100, 0.8), (200, 0.5), (300, 0.55)]), (1, [(100, 0.7), (200, 0.6), (300, 0.4)])):
        folder = tmp_path / f"records/cells/yo/h1/none/s0/seed{seed}"
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({
            "status": "completed", "arguments": {"train": {"max_steps": 6000, "early_stopping_patience": 8}},
            "phases": [{"name": "finetune", "validation_curve": [{"step": st, "valid_wer": 1.0, "valid_cer": c}
                                                                 for st, c in curve]}, {"name": "export"}]}))
    (tmp_path / "probe").mkdir()
    convergence.main(str(tmp_path / "probe"), str(tmp_path / "out"), [str(tmp_path / "records")])
    summary = json.loads((tmp_path / "out" / "convergence.json").read_text())
    assert summary["yo-h1"]["n_updates"] == 300
    assert summary["yo-h1"]["seeds"]["0"]["best_step"] == 200 and summary["yo-h1"]["seeds"]["0"]["best_cer"] == 0.5
