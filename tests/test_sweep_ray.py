"""parp sweep --launcher ray: every cell a Ray task on a local instance; same results as the local launcher,
finished cells not rerun, a worker killed mid-cell retried from the cell's checkpoint, every cell done once."""

from __future__ import annotations

import json
import os

import pytest
from helpers import synthetic_corpus, tiny_model_dir

from parp.cli import main
from parp.experiments.launchers import LaunchArguments, start_ray
from parp.experiments.cells import Cell
from parp.experiments.grid import SweepConfig
from parp.experiments.sweep import run_sweep
from parp.results import read_results

try:
    import ray
except ImportError:  # an optional extra, but part of .[test]: CI must have it
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("Ray is not installed: pip install 'parp[ray]'", allow_module_level=True)

GRID = [("none", 0.0), ("omp", 0.5), ("parp", 0.5), ("random", 0.5)]
COST = ("wall_seconds", "phase_wall_seconds")  # time differs from run to run; everything else must not
RAY = LaunchArguments(launcher="ray", ray_num_cpus=2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep-ray")
    return root, synthetic_corpus(root / "corpus", n=16), tiny_model_dir(root / "model")


def _config(setup, out, **overrides) -> SweepConfig:
    root, manifest, model = setup
    values = dict(output_dir=str(out), languages=[f"xx={manifest}"], methods=["omp", "parp", "random"],
                  sparsities=[0.5], model=str(model), mask_time_prob=0.0, max_steps=3, learning_rate=5e-2,
                  warmup_steps=0, eval_every=0, save_every=0, max_batch_seconds=4, valid_fraction=0.25,
                  progress=False)
    values.update(overrides)
    return SweepConfig(**values)


@pytest.fixture(scope="module")
def local_sweep(setup):
    """The reference: the same 4 cells run by the local launcher in this process, on one torch thread like each Ray
    worker of a one-CPU task (Ray sets OMP_NUM_THREADS=1 there): another thread count sums in another order, and the
    weights then differ in the last bits (seen as 4e-4 after a few updates under CI's two threads)."""
    import torch

    out = setup[0] / "local"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_sweep(_config(setup, out))
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def ray_instance():
    """One small local Ray instance (2 CPUs = 2 workers) for the module, started the way parp starts it."""
    assert start_ray(RAY, log_to_driver=False) is True
    assert ray.cluster_resources()["CPU"] == 2
    yield
    ray.shutdown()


def _comparable(out):
    return [{k: v for k, v in row.items() if k not in COST} for row in read_results(out / "results.csv")]


def _same_weights(a, b):
    """Bit-identical tensors in every cell's exported model (compared as tensors: a failing bytes comparison makes
    pytest diff megabytes)."""
    import torch
    from safetensors.torch import load_file

    for method, sparsity in GRID:
        cell = Cell("xx", method, sparsity, 0)
        left, right = (load_file(str(cell.directory(d) / "model" / "model.safetensors")) for d in (a, b))
        assert left.keys() == right.keys(), cell.label()
        differ = {k: float((left[k].float() - right[k].float()).abs().max()) for k in left
                  if not torch.equal(left[k], right[k])}
        assert not differ, f"{cell.label()}: {len(differ)} tensors differ, by up to {max(differ.values()):.3g}"


def _mtimes(out):
    return {p: p.stat().st_mtime_ns for p in sorted(out.glob("cells/**/run.json"))}


# first: it needs no Ray instance, and checks that none is running yet
def test_launcher_flags_are_checked_before_anything_runs(setup, tmp_path, capsys):
    base = ["sweep", "--languages", f"xx={setup[1]}", "--output_dir", str(tmp_path / "out")]
    assert main(base + ["--launcher", "slurm"]) == 2
    assert "parp: error: --launcher: unknown launcher 'slurm'" in capsys.readouterr().err
    assert main(base + ["--ray_address", "auto"]) == 2  # the local launcher joins no cluster
    assert "--ray_address / --ray_num_cpus need --launcher ray" in capsys.readouterr().err
    assert main(base + ["--launcher", "ray", "--cell_cpus", "0"]) == 2
    assert "a cell needs a positive share of CPUs or GPUs" in capsys.readouterr().err
    # Ray would retry an address where nothing listens for ever; parp refuses it at once
    assert main(base + ["--launcher", "ray", "--ray_address", "127.0.0.1:1"]) == 2
    assert "--ray_address 127.0.0.1:1: nothing answers there" in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "out" / "cells").exists()


@pytest.mark.slow
def test_ray_sweep_gives_the_local_launchers_results_and_skips_finished_cells(setup, local_sweep, ray_instance,
                                                                              tmp_path, capsys):
    out = tmp_path / "ray"
    rows = run_sweep(_config(setup, out), launch=RAY)
    assert [(r["method"], r["sparsity_target"]) for r in rows] == GRID
    assert _comparable(out) == _comparable(local_sweep)
    assert all(r["wer"] is not None and r["sparsity_achieved"] == pytest.approx(s, abs=1e-3)
               for r, (_, s) in zip(rows, GRID))
    assert next(r for r in rows if r["method"] == "omp")["reused_dense"] is True  # waited for the dense cell
    _same_weights(out, local_sweep)
    assert not list(out.glob("cells/**/claimed.pid")), "the Ray driver needs no PID claims"
    printed = capsys.readouterr().out
    assert printed.count("submitted to Ray") == 4 and printed.count(": done in") == 4

    before = _mtimes(out)
    assert run_sweep(_config(setup, out), launch=RAY) == rows
    assert _mtimes(out) == before, "a finished cell was run again"
    printed = capsys.readouterr().out
    assert printed.count("completed earlier, skipped") == 4 and "submitted to Ray" not in printed


@pytest.mark.slow
def test_a_worker_killed_mid_cell_is_retried_and_every_cell_finishes_once(setup, local_sweep, ray_instance,
                                                                          tmp_path):
    out, events = tmp_path / "ray", tmp_path / "events.log"
    crashed = tmp_path / "crashed"

    def crash_once(config, language, cell, output_dir):
        """The real cell, whose worker process dies right after the first checkpoint of the whole sweep."""
        import os

        import parp.training.loop as loop
        from parp.experiments.sweep import run_cell

        save = loop._save_checkpoint

        def save_then_die(*args, **kwargs):
            save(*args, **kwargs)
            try:
                os.close(os.open(crashed, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            with open(crashed, "w") as f:
                f.write(cell.label())
            os._exit(1)  # as a node lost or an OOM kill: no exception, no cleanup

        with open(events, "a") as f:
            f.write(f"start {cell.label()}\n")
        loop._save_checkpoint = save_then_die
        try:
            summary = run_cell(config, language, cell, output_dir)
        finally:
            loop._save_checkpoint = save
        with open(events, "a") as f:
            f.write(f"done {cell.label()}\n")
        return summary

    rows = run_sweep(_config(setup, out, save_every=1), launch=RAY, cell_runner=crash_once)
    victim = crashed.read_text()
    lines = events.read_text().splitlines()
    labels = [Cell("xx", m, s, 0).label() for m, s in GRID]
    assert sorted(line[5:] for line in lines if line.startswith("done ")) == sorted(labels)  # each exactly once
    starts = [line[6:] for line in lines if line.startswith("start ")]
    assert sorted(starts) == sorted(labels + [victim]), "only the killed cell ran again"

    # the retry resumed the killed cell from its step-1 checkpoint, and the results are the local launcher's
    cells = {Cell("xx", m, s, 0).label(): Cell("xx", m, s, 0) for m, s in GRID}
    record = json.loads((cells[victim].directory(out) / "run.json").read_text())
    assert [p["resumed_from_step"] for p in record["phases"] if "resumed_from_step" in p][-1] == 1
    assert [(r["method"], r["sparsity_target"]) for r in rows] == GRID
    assert _comparable(out) == _comparable(local_sweep)
    _same_weights(out, local_sweep)
