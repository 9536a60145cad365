"""Issue 27, point 3: the convergence rule, measured. Reads the probe runs of ``probe.sh`` (the unpruned model per
language and data size, two seeds, a long schedule that stops itself after 8 validations without a lower CER) and
writes

- ``convergence.png``: validation CER against updates, one panel per language and data size, one line per seed,
  N(d) marked;
- ``convergence.json``: per language, data size and seed the best step and CER, where the run stopped, and N(d).

The rule: N(d) is the latest best step over two or more seeds, rounded up to a validation; every seed then trained
``patience`` more validations without improving, the evidence that more updates do not help.

The unpruned cells of a sweep run with the same schedule (``docs/results/real-languages/probes-1h.yaml``) are
probes too: name the sweep folder after ``--sweeps`` and its ``cells/LANG[/hH]/none/s0/seedN`` join the figure.

    python docs/results/converged/convergence.py runs/converged/probe docs/results/converged \
        [--sweeps runs/real-languages/1h runs/real-languages/baselines-all]
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from parp.records import read_run  # noqa: E402


PROBE_SCHEDULE = (6000, 8)  # probe.sh's max_steps and early-stopping patience


def probe_runs(folder: Path) -> list[tuple[str, str, str, Path]]:
    """(language, hours or 'all', seed, run folder) of probe.sh's runs (``LANG-hH-seedN``)."""
    return [(*re.fullmatch(r"(.+)-h([\d.]+|all)-seed(\d+)", d.name).groups(), d)
            for d in sorted(folder.glob("*-h*-seed*"))]


def sweep_runs(folder: Path) -> list[tuple[str, str, str, Path]]:
    """The same for a sweep's unpruned cells: ``cells/LANG/hH/none/s0/seedN`` (a data size) or ``cells/LANG/none/...``
    (all the data)."""
    runs = []
    for d in sorted(folder.glob("cells/*/none/s0/seed*")) + sorted(folder.glob("cells/*/h*/none/s0/seed*")):
        parts = d.relative_to(folder / "cells").parts
        hours = parts[1][1:] if len(parts) == 5 else "all"
        runs.append((parts[0], hours, parts[-1][len("seed"):], d))
    return runs


def probes(folders: list[Path], sweeps: list[Path] = ()) -> dict[tuple[str, float], dict[int, dict]]:
    """(language, hours) -> seed -> {curve, best_step, best_cer, last_step, finished} from each probe's record (or,
    while it runs, its last checkpoint). The error is CER, or PER for a phone vocabulary (East Tusom)."""
    result: dict[tuple[str, float], dict[int, dict]] = {}
    found = [r for f in folders for r in probe_runs(f)] + [r for f in sweeps for r in sweep_runs(f)]
    for language, hours, seed, run_dir in found:
        run = read_run(run_dir)
        schedule = (run.arguments.get("train") or {}) if run else {}
        if (schedule.get("max_steps"), schedule.get("early_stopping_patience")) != PROBE_SCHEDULE:
            print(f"{run_dir}: not a probe (max_steps, patience = {schedule.get('max_steps')}, "
                  f"{schedule.get('early_stopping_patience')}; probes: {PROBE_SCHEDULE}), left out", file=sys.stderr)
            continue
        history, finished = (run.data.get("history") or [], run.completed) if run else ([], False)
        if not history and run:  # a sweep cell's record keeps its fine-tuning's validations, not the whole log
            phases = [p for p in run.data.get("phases") or [] if p.get("name") == "finetune"]
            history = phases[-1].get("validation_curve") or [] if phases else []
        if not finished:  # still running: its last checkpoint holds the curve so far
            states = sorted(run_dir.glob("checkpoints/step-*/trainer_state.json"))
            history = json.loads(states[-1].read_text())["history"] if states else []
        metric = "valid_per" if any("valid_per" in h for h in history) else "valid_cer"
        curve = [(h["step"], h[metric]) for h in history if metric in h]
        if len(curve) >= 2 and curve[-1][0] == curve[-2][0]:
            curve = curve[:-1]  # the final validation of the restored best model, at the stop step: not a new point
        if not curve:
            continue
        best_step, best = min(curve, key=lambda point: (point[1], point[0]))
        result.setdefault((language, math.inf if hours == "all" else float(hours)), {})[int(seed)] = {
            "curve": curve, "best_step": best_step, "best_cer": best, "last_step": curve[-1][0], "finished": finished}
    return result


def _size(hours: float) -> str:
    return "all" if math.isinf(hours) else f"{hours:g} h"


def main(probe_dir: str, out_dir: str, sweeps: list[str] = (), eval_every: int = 100) -> None:
    data = probes([Path(probe_dir)], [Path(s) for s in sweeps])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    fig, axes = plt.subplots(1, len(data), figsize=(5 * len(data), 3.6), squeeze=False)
    for ax, ((language, hours), seeds) in zip(axes[0], sorted(data.items())):
        done = len(seeds) >= 2 and all(s["finished"] for s in seeds.values())  # the rule needs two seeds
        n_d = eval_every * math.ceil(max(s["best_step"] for s in seeds.values()) / eval_every)
        token = "all" if math.isinf(hours) else f"{hours:g}"
        summary[f"{language}-h{token}"] = {  # named as the probe's folder
            "seeds": {seed: {k: v for k, v in s.items() if k != "curve"} for seed, s in seeds.items()},
            "n_updates": n_d if done else None, "all_seeds_stopped": done}
        for seed, s in sorted(seeds.items()):
            steps, cers = zip(*s["curve"])
            ax.plot(steps, cers, label=f"seed {seed} (best {s['best_cer']:.3f} at {s['best_step']})")
        if done:
            ax.axvline(n_d, color="grey", linestyle="--", label=f"N(d) = {n_d}")
        state = "" if done else " (one seed so far)" if all(s["finished"] for s in seeds.values()) else " (running)"
        ax.set_title(f"{language}, {_size(hours)} of training audio" + state)
        ax.set_xlabel("updates")
        ax.set_ylabel("validation CER (at most 200 utterances)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
    (out / "convergence.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({h: s["n_updates"] for h, s in summary.items()}))


if __name__ == "__main__":
    if len(sys.argv) < 3 or (len(sys.argv) > 3 and sys.argv[3] != "--sweeps"):
        sys.exit("usage: convergence.py PROBE_DIR OUT_DIR [--sweeps SWEEP_DIR ...]")
    main(sys.argv[1], sys.argv[2], sys.argv[4:])
