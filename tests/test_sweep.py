"""parp sweep: one schedule for every cell, finished cells never rerun, OMP reuses the dense cell honestly."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest
from helpers import synthetic_corpus, tiny_model_dir

from parp.data import DataArguments
from parp.errors import ConfigError
from parp.experiments.cells import Cell
from parp.experiments.grid import SweepConfig, load_sweep_config
from parp.experiments.sweep import run_sweep
from parp.methods import PruneArguments, run_prune
from parp.models import ModelArguments
from parp.results import read_results
from parp.sparsity import Mask
from parp.training.loop import TrainConfig

STEPS = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    return root, synthetic_corpus(root / "corpus", n=16), tiny_model_dir(root / "model")


def _config(setup, out, **overrides) -> SweepConfig:
    root, manifest, model = setup
    values = dict(output_dir=str(out), languages=[f"xx={manifest}"], methods=["omp"], sparsities=[0.5],
                  model=str(model), mask_time_prob=0.0, max_steps=STEPS, learning_rate=5e-2, warmup_steps=0,
                  eval_every=0, save_every=0, max_batch_seconds=4, valid_fraction=0.25, progress=False)
    values.update(overrides)
    return SweepConfig(**values)


def _mtimes(out):
    return {p: p.stat().st_mtime_ns for p in sorted(out.glob("cells/**/run.json"))}


def test_rerun_skips_completed_cells_and_omp_reuses_the_dense_cell(setup, tmp_path, capsys):
    out = tmp_path / "sweep"
    rows = run_sweep(_config(setup, out))
    assert [(r["method"], r["sparsity_target"]) for r in rows] == [("none", 0.0), ("omp", 0.5)]
    before = _mtimes(out)
    assert len(before) == 2

    capsys.readouterr()
    again = run_sweep(_config(setup, out))
    assert _mtimes(out) == before, "a completed cell was run again"
    assert capsys.readouterr().out.count("completed earlier, skipped") == 2
    assert again == rows

    # honest cost: the reused dense phase's steps and wall time are part of OMP's cost
    none, omp = read_results(out / "results.csv")
    assert omp["reused_dense"] is True and none["reused_dense"] is False
    assert omp["finetune_steps"] == 2 * STEPS and omp["finetunings"] == 2
    assert omp["phase_wall_seconds"]["finetune-1"] == none["phase_wall_seconds"]["finetune"]
    assert omp["wall_seconds"] >= none["phase_wall_seconds"]["finetune"] + omp["phase_wall_seconds"]["finetune-2"]
    omp_dir = Cell("xx", "omp", 0.5, 0).directory(out)
    assert not (omp_dir / "finetune-1").exists(), "the dense fine-tuning ran again instead of being reused"
    record = json.loads((omp_dir / "run.json").read_text())
    assert record["total_finetune_steps"] == 2 * STEPS
    assert omp["sparsity_achieved"] == pytest.approx(0.5, abs=1e-3)
    # recorded when the cell ran (the report reads it, loading no model); the unpruned cell has none
    assert 0 < omp["iou_with_pretrained_mask"] <= 1 and none["iou_with_pretrained_mask"] is None
    assert Mask.load(out / omp["mask"]).sparsity() == pytest.approx(0.5, abs=1e-3)

    # reuse is exact: OMP run from scratch with the same schedule ends with the same mask
    _, manifest, model = setup
    scratch = run_prune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                        ModelArguments(model=str(model), mask_time_prob=0.0),
                        TrainConfig(output_dir=str(tmp_path / "scratch"), max_steps=STEPS, learning_rate=5e-2,
                                    warmup_steps=0, eval_every=0, save_every=0, max_batch_seconds=4, progress=False),
                        PruneArguments(method="omp", sparsity=0.5))
    assert scratch["reused_dense"] is False
    from transformers import AutoModelForCTC

    from parp.sparsity import prunable_parameters

    reused = prunable_parameters(AutoModelForCTC.from_pretrained(omp_dir / "finetune-2" / "model"))
    fresh = prunable_parameters(AutoModelForCTC.from_pretrained(tmp_path / "scratch" / "finetune-2" / "model"))
    for name, weight in reused.items():
        assert ((weight == 0) == (fresh[name] == 0)).all(), name


def test_dense_checkpoint_with_another_schedule_is_refused(setup, tmp_path):
    out = tmp_path / "sweep"
    run_sweep(_config(setup, out, methods=[], sparsities=[0.0]))
    _, manifest, model = setup
    with pytest.raises(ConfigError, match="max_steps"):
        run_prune(DataArguments(train_manifest=str(manifest), valid_fraction=0.25),
                  ModelArguments(model=str(model), mask_time_prob=0.0),
                  TrainConfig(output_dir=str(tmp_path / "omp"), max_steps=STEPS + 1, learning_rate=5e-2,
                              warmup_steps=0, eval_every=0, save_every=0, max_batch_seconds=4, progress=False),
                  PruneArguments(method="omp", sparsity=0.5,
                                 dense_checkpoint=str(Cell("xx", "none", 0.0, 0).directory(out))))


def test_sweep_config_from_yaml_with_a_language_mapping(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("output_dir: out\nlanguages:\n  fi: fi/train.tsv\n  sw: {train: sw/train.tsv, valid: sw/v.tsv}\n"
                    "methods: [parp, omp]\nsparsities: [0, 0.5]\nseeds: [1, 2]\nmax_steps: 7\n")
    config = load_sweep_config(path)
    assert config.max_steps == 7 and config.seeds == [1, 2] and config.freeze_transformer_steps == 0
    from parp.experiments.grid import validate_sweep

    languages, cells = validate_sweep(config)
    assert [(l.name, l.valid_manifest) for l in languages] == [("fi", None), ("sw", "sw/v.tsv")]
    assert len(cells) == 2 * 2 * (1 + 2)  # per language and seed: none + parp + omp at 0.5
    assert cells[0].method == "none"
    with pytest.raises(ConfigError, match="unknown"):
        validate_sweep(SweepConfig(languages=["fi=x.tsv"], methods=["magic"]))
    # the CLI reads the same file (the mapping passes through the flag parser untouched)
    from parp.cli import main

    assert main(["sweep", "--config", str(path), "--output-dir", str(tmp_path / "out")]) == 2  # fi/train.tsv absent


def test_multilingual_parp_is_scored_per_language_and_compared_with_their_masks(setup, tmp_path, capsys):
    root, manifest, _ = setup
    other = synthetic_corpus(root / "corpus-b", n=12, seed=5)
    out = tmp_path / "sweep"
    rows = run_sweep(_config(setup, out, languages=[f"xx={manifest}", f"yy={other}"], methods=["parp"],
                             multilingual=True, max_steps=2))
    multi = [r for r in rows if r["method"] == "parp-multi"]
    assert sorted(r["language"] for r in multi) == ["xx", "yy"]
    for row in multi:
        assert row["wer"] is not None and 0.0 <= row["iou_with_language_mask"] <= 1.0
        assert row["cell"] == "cells/multi/parp-multi/s0.5/seed0"
    union = (out / "multilingual-data" / "train.tsv").read_text().splitlines()
    per_language = [r for r in rows if r["method"] == "parp"]
    assert len(per_language) == 2 and len(union) - 1 == 12 + 9  # both training splits (valid_fraction 0.25)
    assert multi[0]["finetune_steps"] == 2
    # a longer multilingual run (multilingual_steps) lives beside the first instead of being skipped as finished
    rows = run_sweep(_config(setup, out, languages=[f"xx={manifest}", f"yy={other}"], methods=["parp"],
                             multilingual=True, max_steps=2, multilingual_steps=3))
    longer = [r for r in rows if r["method"] == "parp-multi-3"]
    assert [r["cell"] for r in longer] == ["cells/multi/parp-multi-3/s0.5/seed0"] * 2
    assert longer[0]["finetune_steps"] == 3 and [r for r in rows if r["method"] == "parp-multi"] == multi
    capsys.readouterr()  # collecting counts the grid's cells, not the multilingual rows beside them
    rows = run_sweep(_config(setup, out, languages=[f"xx={manifest}", f"yy={other}"], methods=["parp"],
                             max_steps=2, collect_only=True))
    assert len(rows) == 4 + 4 and "sweep: 4 of 4 cells finished" in capsys.readouterr().out


def test_multilingual_steps_set_only_the_multilingual_runs_updates(setup, tmp_path):
    from parp.experiments.multilingual import multilingual_train_config

    config = _config(setup, tmp_path, multilingual=True, max_steps=3, multilingual_steps=30)
    assert multilingual_train_config(config, tmp_path / "m", 1).max_steps == 30
    assert multilingual_train_config(dataclasses.replace(config, multilingual_steps=None), tmp_path, 1).max_steps == 3


def test_multilingual_cell_held_by_another_worker_is_waited_for_not_trained_twice(setup, tmp_path, capsys):
    """Two workers with multilingual: true once both trained the one multilingual run into the same folder."""
    import json as _json
    import subprocess
    import threading
    import time

    from parp.experiments.claims import _process_start

    root, manifest, _ = setup
    other = synthetic_corpus(root / "corpus-d", n=12, seed=5)
    out = tmp_path / "sweep"
    config = _config(setup, out, languages=[f"xx={manifest}", f"yy={other}"], methods=["parp"], max_steps=2)
    run_sweep(config)  # the per-language cells, so the multilingual step comes at once below
    cell = out / "cells" / "multi" / "parp-multi" / "s0.5" / "seed0"
    cell.mkdir(parents=True)
    worker = subprocess.Popen(["sleep", "60"])  # stands for the other worker, alive and holding the claim
    try:
        import socket

        (cell / "claimed.pid").write_text(_json.dumps({"pid": worker.pid, "host": socket.gethostname(),
                                                       "start": _process_start(worker.pid)}))
        result = {}
        thread = threading.Thread(target=lambda: result.update(rows=run_sweep(
            _config(setup, out, languages=[f"xx={manifest}", f"yy={other}"], methods=["parp"], max_steps=2,
                    multilingual=True), poll_seconds=0.1)))
        thread.start()
        time.sleep(3)
        assert thread.is_alive() and not (cell / "run.json").exists()  # waiting, not training
    finally:
        worker.kill()
        worker.wait()
    thread.join(timeout=300)  # the claim's owner died: taken over, trained once, scored per language
    assert not thread.is_alive()
    assert "another worker runs it; waiting" in capsys.readouterr().out
    assert sorted(r["language"] for r in result["rows"] if r["method"] == "parp-multi") == ["xx", "yy"]
    assert not (cell / "claimed.pid").exists()


def test_two_worker_processes_share_one_sweep_folder(setup, tmp_path):
    """Two `parp sweep` processes on one folder: every cell runs exactly once, OMP still reuses the dense cell."""
    import subprocess
    import sys

    import yaml

    out = tmp_path / "shared-sweep"
    config = _config(setup, out, methods=["omp", "parp"], sparsities=[0.3, 0.6])
    values = {k: v for k, v in config.__dict__.items() if v is not None}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(values))
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "parp", "sweep", "--config", str(path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    ran = [line.split(": running")[0].split("] ")[1] for log in logs for line in log.splitlines() if ": running" in line]
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 5, logs  # none + 2 omp + 2 parp, each once
    rows = read_results(out / "results.csv")
    assert len(rows) == 5 and all(r["reused_dense"] for r in rows if r["method"] == "omp")
    assert not list(out.glob("cells/**/claimed.pid"))


def test_collect_only_reports_finished_cells_and_a_changed_schedule_is_refused(setup, tmp_path, capsys):
    out = tmp_path / "sweep"
    run_sweep(_config(setup, out, methods=[], sparsities=[0.0]))  # only the dense cell has run
    before = _mtimes(out)

    capsys.readouterr()
    rows = run_sweep(_config(setup, out, methods=["parp"], sparsities=[0.5], collect_only=True))
    assert _mtimes(out) == before and not (out / "cells" / "xx" / "parp").exists(), "collect_only ran a cell"
    assert [r["method"] for r in rows] == ["none"]
    assert "1 of 2 cells finished" in capsys.readouterr().out
    assert [r["method"] for r in read_results(out / "results.csv")] == ["none"]

    # the finished cell ran 3 steps: a sweep asking for 4 must not silently skip it as if it were comparable
    with pytest.raises(ConfigError, match=r"other settings \(train: max_steps\)"):
        run_sweep(_config(setup, out, methods=[], sparsities=[0.0], max_steps=STEPS + 1))
    with pytest.raises(ConfigError, match=r"data: max_valid_utterances"):
        run_sweep(_config(setup, out, methods=[], sparsities=[0.0], max_valid_utterances=2, collect_only=True))
    # settings that do not change the weights (checkpoint frequency, progress bars) are no reason to refuse
    run_sweep(_config(setup, out, methods=[], sparsities=[0.0], save_every=1, progress=True))
    assert _mtimes(out) == before

    # records copied back without weights or masks (a GPU call's): collected, the mask named where export writes it
    for weights in (out / "cells").rglob("*.safetensors"):
        weights.unlink()
    rows = run_sweep(_config(setup, out, methods=[], sparsities=[0.0], collect_only=True))
    assert rows[0]["mask"].endswith("/model/mask.safetensors") and rows[0]["cer"] is not None


def test_imp_chain_runs_one_trajectory_through_the_sweep_sparsities(setup, tmp_path):
    out = tmp_path / "sweep"
    rows = run_sweep(_config(setup, out, methods=["imp"], sparsities=[0.6, 0.3], imp_chain=True))
    none, low, high = rows
    assert (low["sparsity_target"], high["sparsity_target"]) == (0.3, 0.6)
    # 0.3: dense (reused from 'none') + one round; 0.6: those two (reused from the 0.3 cell) + one more round
    assert (low["finetunings"], high["finetunings"]) == (2, 3)
    assert high["finetune_steps"] == 3 * STEPS and high["reused_dense"] is True
    assert high["phase_wall_seconds"]["finetune-1"] == low["phase_wall_seconds"]["finetune-1"]
    assert high["phase_wall_seconds"]["finetune-0"] == none["phase_wall_seconds"]["finetune"]
    assert high["wall_seconds"] > low["wall_seconds"]
    assert not (Cell("xx", "imp", 0.6, 0).directory(out) / "finetune-1").exists(), "round 1 ran twice"
    low_mask, high_mask = Mask.load(out / low["mask"]), Mask.load(out / high["mask"])
    assert high_mask.sparsity() == pytest.approx(0.6, abs=1e-3)
    for name in high_mask:
        assert not (high_mask[name] & ~low_mask[name]).any(), f"{name}: a weight pruned at 0.3 came back at 0.6"
    before = _mtimes(out)
    run_sweep(_config(setup, out, methods=["imp"], sparsities=[0.3, 0.6], imp_chain=True))
    assert _mtimes(out) == before
    # the chained cells ran one round each: a sweep with independent IMP cells must not take them as its own
    with pytest.raises(ConfigError, match=r"imp/s0.3/seed0: .*other settings \(prune: imp_rounds\)"):
        run_sweep(_config(setup, out, methods=["imp"], sparsities=[0.3, 0.6], imp_rounds=2))


def test_imp_reuses_the_dense_cell_and_counts_its_cost(setup, tmp_path):
    out = tmp_path / "sweep"
    rows = run_sweep(_config(setup, out, methods=["imp"], sparsities=[0.6], imp_rounds=2))
    none, imp = rows
    assert imp["method"] == "imp" and imp["reused_dense"] is True
    assert imp["finetunings"] == 3 and imp["finetune_steps"] == 3 * STEPS  # dense + 2 rounds
    assert imp["phase_wall_seconds"]["finetune-0"] == none["phase_wall_seconds"]["finetune"]
    assert not (Cell("xx", "imp", 0.6, 0).directory(out) / "finetune-0").exists()
    assert imp["sparsity_achieved"] == pytest.approx(0.6, abs=1e-3)


def test_a_claim_being_written_is_respected_and_a_dead_one_taken_over(tmp_path):
    import os
    import subprocess
    import sys

    from parp.experiments.claims import claim_cell

    cell = tmp_path / "cell"
    cell.mkdir()
    lock = cell / "claimed.pid"
    lock.write_text("")  # another worker has just created its claim and not yet written its PID
    assert claim_cell(cell) is False and lock.read_text() == ""
    old = lock.stat().st_mtime - 120
    os.utime(lock, (old, old))  # ... or it died right there, long ago
    assert claim_cell(cell) is True and json.loads(lock.read_text())["pid"] == os.getpid()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(dead.stdout.strip())  # a killed worker's claim (the PID-only format of older parp)
    assert claim_cell(cell) is True and json.loads(lock.read_text())["pid"] == os.getpid()


def test_phone_sweep_passes_its_transcript_column_and_unit_to_every_cell():
    from parp.experiments.cells import LanguageData, data_arguments
    from parp.experiments.grid import SweepConfig

    es = LanguageData("es", "es/train.tsv")
    phones = data_arguments(SweepConfig(text_column="phones", token_unit="phone", allow_unknown_chars=True), es)
    assert (phones.text_column, phones.token_unit, phones.allow_unknown_chars) == ("phones", "phone", True)
    # defaults stay None, so cells recorded before these options still match their settings when resumed
    plain = data_arguments(SweepConfig(), es)
    assert (plain.text_column, plain.token_unit, plain.allow_unknown_chars) == (None, None, False)


def test_a_language_of_a_sweep_can_have_its_own_units_and_clip_lengths():
    """Eight real languages in one grid: East Tusom as IPA phones, Quechua with its 30 s clips, the rest as
    letters with the grid's settings; the multilingual union keeps the languages that share one vocabulary."""
    from parp.experiments.cells import data_arguments
    from parp.experiments.grid import SweepConfig, parse_languages
    from parp.experiments.multilingual import union_languages

    config = SweepConfig(max_seconds=25.0, languages={
        "yo": "yo/train.tsv",
        "qu": {"train": "qu/train.tsv", "max_seconds": 30},
        "tus": {"train": "tus/train.tsv", "token_unit": "ipa-phone", "allow_unknown_chars": True}})
    yo, qu, tus = parse_languages(config.languages)
    assert [(d.token_unit, d.allow_unknown_chars, d.max_seconds) for d in
            (data_arguments(config, lang, 1.0) for lang in (yo, qu, tus))] == [
        (None, False, 25.0), (None, False, 30.0), ("ipa-phone", True, 25.0)]
    assert data_arguments(config, qu, 1.0).train_hours == 1.0
    kept, left_out = union_languages(config, [yo, qu, tus])
    assert ([lang.name for lang in kept], left_out) == (["yo", "qu"], ["tus"])


@pytest.mark.parametrize("options, message", [
    ({"tokens": "phone"}, "language 'tus': unknown option(s) tokens"),
    ({"token_unit": "phones"}, "language 'tus': token_unit must be char | phone | ipa-phone"),
    ({"max_seconds": "long"}, "language 'tus': max_seconds must be a number of seconds"),
    ({"allow_unknown_chars": "yes"}, "language 'tus': allow_unknown_chars must be true or false"),
    ({"max_steps": 0}, "language 'tus': max_steps must be a whole number of updates >= 1, got 0"),
    ({"max_steps": "2300"}, "language 'tus': max_steps must be a whole number of updates >= 1, got '2300'")])
def test_a_languages_own_options_are_checked_before_any_cell_runs(options, message):
    from parp.experiments.grid import parse_languages

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_languages({"tus": {"train": "tus/train.tsv", **options}})


def test_a_language_can_train_to_its_own_convergence_budget(tmp_path):
    """Languages converge at different speeds (N(d) per language): a language's own max_steps reaches every cell
    trained on it (unpruned, OMP's second phase, PARP-P' onto it), the others keep the grid's, and its data
    settings are untouched by it."""
    from parp.experiments.cells import cell_arguments, data_arguments
    from parp.experiments.grid import SweepConfig, validate_sweep

    config = SweepConfig(max_steps=1400, methods=["omp", "parp"], sparsities=[0.5], transfer=True,
                         languages={"yo": {"train": "yo/train.tsv", "max_steps": 2300}, "rw": "rw/train.tsv"})
    languages, cells = validate_sweep(config)
    by_name = {lang.name: lang for lang in languages}
    steps = {(c.language, c.method, c.mask_from): cell_arguments(config, by_name[c.language], c, tmp_path)[2].max_steps
             for c in cells}
    assert {k: v for k, v in steps.items() if k[0] == "yo"} == {
        ("yo", "none", None): 2300, ("yo", "omp", None): 2300, ("yo", "parp", None): 2300,
        ("yo", "transfer", "rw"): 2300, ("yo", "transfer-random", "rw"): 2300}
    assert set(v for k, v in steps.items() if k[0] == "rw") == {1400}
    assert vars(data_arguments(config, by_name["yo"])) == {**vars(data_arguments(config, by_name["rw"])),
                                                           "train_manifest": "yo/train.tsv"}


def test_multilingual_needs_two_languages_that_share_a_vocabulary():
    from parp.experiments.grid import SweepConfig, validate_sweep

    config = SweepConfig(multilingual=True, languages={
        "yo": "yo/train.tsv", "tus": {"train": "tus/train.tsv", "token_unit": "ipa-phone"}})
    with pytest.raises(ConfigError, match="at least two languages with the grid's token_unit"):
        validate_sweep(config)


def test_a_claim_whose_pid_was_reused_by_another_process_is_stale(tmp_path):
    """PID alive, same host, another start time: the worker died and its PID now belongs to someone else."""
    import os
    import socket
    import subprocess

    from parp.experiments.claims import _process_start, claim_cell

    cell = tmp_path / "cell"
    cell.mkdir()
    lock = cell / "claimed.pid"
    other = subprocess.Popen(["sleep", "30"])  # an unrelated live process
    try:
        host = socket.gethostname()
        live = {"pid": other.pid, "host": host, "start": _process_start(other.pid)}
        assert live["start"] is not None
        lock.write_text(json.dumps(live))  # a live worker's claim is respected
        assert claim_cell(cell) is False
        lock.write_text(json.dumps({**live, "start": str(int(live["start"]) - 1)}))  # PID reused since
        assert claim_cell(cell) is True and json.loads(lock.read_text())["pid"] == os.getpid()
        lock.write_text(json.dumps({**live, "host": host + "-elsewhere", "start": "1"}))
        assert claim_cell(cell) is False  # another machine's claim on a shared folder: not ours to judge
    finally:
        other.kill()
        other.wait()


def test_a_second_worker_takes_the_next_seeds_imp_chain_while_the_first_runs_its_own(setup, tmp_path):
    """Two workers on one IMP-chain grid: the second must not stop because the first's chain is unfinished."""
    import socket
    import subprocess

    from parp.experiments.claims import _process_start
    from parp.experiments.grid import validate_sweep
    from parp.experiments.sweep import next_cell

    out = tmp_path / "sweep"
    config = _config(setup, out, methods=["imp"], sparsities=[0.1, 0.3, 0.5], seeds=[0, 1], imp_chain=True)
    run_sweep(_config(setup, out, methods=[], sparsities=[0.0], seeds=[0, 1]))  # both dense cells finished
    cells = validate_sweep(config)[1]
    first = Cell("xx", "imp", 0.1, 0).directory(out)
    first.mkdir(parents=True)
    worker = subprocess.Popen(["sleep", "60"])  # the first worker, alive, running seed 0's first round
    try:
        (first / "claimed.pid").write_text(json.dumps({"pid": worker.pid, "host": socket.gethostname(),
                                                       "start": _process_start(worker.pid)}))
        pick = next_cell(config, cells, out, announced=set())
        assert cells[pick.number - 1] == Cell("xx", "imp", 0.1, 1)  # seed 1's chain, not an error on seed 0's
        (Cell("xx", "imp", 0.1, 1).directory(out) / "claimed.pid").unlink()
        (first / "claimed.pid").unlink()
        # a round this process already ran and did not finish is an error, not an endless wait
        with pytest.raises(ConfigError, match=r"imp s=0.3 seed=0: continues .*imp s=0.1 seed=0.*did not finish"):
            next_cell(config, cells, out, announced={cells.index(Cell("xx", "imp", 0.1, 0)) + 1})
    finally:
        worker.kill()
        worker.wait()


def test_a_setting_newer_than_a_finished_cell_matches_it_at_its_default():
    """Cells recorded before an option existed match a run that sets it to what they did (not to today's default:
    ctc_head_init defaults to prior now, runs without the option had transformers' random head)."""
    from parp.methods.compatibility import differing_settings

    old = {"model": {"mask_time_prob": 0.05}, "train": {"max_steps": 600}}
    new = {"model": {"mask_time_prob": 0.05, "ctc_head_init": "random"},
           "train": {"max_steps": 600, "freeze_feature_projection": False}}
    assert differing_settings(old, new) == {}
    changed = {"model": {**new["model"], "ctc_head_init": "prior"}, "train": new["train"]}
    assert differing_settings(old, changed) == {"model": ["ctc_head_init"]}
    assert differing_settings(changed, old) == {"model": ["ctc_head_init"]}
    assert differing_settings({"train": {}}, {"train": {"some_new_option": 1}}) == {"train": ["some_new_option"]}


def test_a_finished_cell_of_another_encoder_is_refused(setup, tmp_path):
    """`model: None` means whichever encoder this parp ships: a cell that fine-tuned an earlier one must not be
    skipped as if comparable; the record's encoder identity (pretraining updates from the card) tells them apart."""
    model = tmp_path / "encoder"
    shutil.copytree(setup[2], model)
    (model / "pretraining.json").write_text(json.dumps({"steps": 100}))
    out = tmp_path / "sweep"
    run_sweep(_config(setup, out, model=str(model), methods=[], sparsities=[0.0]))
    record = json.loads(next(out.glob("cells/**/run.json")).read_text())
    assert record["encoder"] == {"source": str(model), "pretraining_steps": 100}
    (model / "pretraining.json").write_text(json.dumps({"steps": 200}))  # the same folder, pretrained longer
    with pytest.raises(ConfigError, match="another encoder .*100 pretraining updates.*200 pretraining updates"):
        run_sweep(_config(setup, out, model=str(model), methods=[], sparsities=[0.0]))


def test_cells_another_sweep_finished_with_the_same_recipe_are_adopted_not_rerun(setup, tmp_path, capsys):
    """reuse_cells_from: overlapping grids (the cross-lingual 1-hour grid holds the convergence grids' cells) share
    finished cells; a cell whose recipe differs in anything that changes weights is run, never adopted."""
    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other"
    ran = {r["method"]: r for r in run_sweep(_config(setup, first))}  # none + omp
    before = _mtimes(first)

    capsys.readouterr()
    rows = run_sweep(_config(setup, second, methods=["omp", "parp"], reuse_cells_from=[str(first)]))
    assert "2 cell(s) adopted" in capsys.readouterr().out
    assert _mtimes(first) == before
    by_method = {r["method"]: r for r in rows}
    for method in ("none", "omp"):
        assert by_method[method]["cer"] == ran[method]["cer"]
        cell = Cell("xx", method, 0.5 if method == "omp" else 0.0, 0)
        record = json.loads((cell.directory(second) / "run.json").read_text())
        assert record["adopted_from"] == str(cell.directory(first))
        original = first / ran[method]["mask"]
        assert (second / by_method[method]["mask"]).samefile(original), "the mask was not linked from the first sweep"
        assert not (cell.directory(second) / "finetune" / "checkpoints").exists()
    assert "adopted_from" not in json.loads((Cell("xx", "parp", 0.5, 0).directory(second) / "run.json").read_text())

    # another schedule: nothing adopted, the cell runs (and the first sweep's cell is untouched)
    capsys.readouterr()
    run_sweep(_config(setup, other, methods=[], sparsities=[0.0], max_steps=STEPS + 1, reuse_cells_from=[str(first)]))
    assert "adopted" not in capsys.readouterr().out
    assert "adopted_from" not in json.loads(next(other.glob("cells/**/run.json")).read_text())
    assert _mtimes(first) == before
