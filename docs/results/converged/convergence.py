"""Issue 27, point 3: the convergence rule, measured. Reads the probe runs of ``probe.sh`` (the unpruned model per
language and data size, two seeds, a long schedule that stops itself after 8 validations without a lower CER) and
writes

- ``convergence.png``: validation CER against updates, one panel per language and data size, one line per seed,
  N(d) marked;
- ``convergence.json``: per language, data size and seed the best step and CER, where the run stopped, and N(d).

The rule: N(d) is the latest best step over two or more seeds, rounded up to a validation; every seed then trained
``patience`` more validations without improving, the evidence that more updates do not help.

    python docs/results/converged/convergence.py runs/converged/probe docs/results/converged
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


def probes(folder: Path) -> dict[tuple[str, float], dict[int, dict]]:
    """(language, hours) -> seed -> {curve, best_step, best_cer, last_step, finished} from each probe's record (or,
    while it runs, its last checkpoint)."""
    result: dict[tuple[str, float], dict[int, dict]] = {}
    for run_dir in sorted(folder.glob("*-h*-seed*")):
        language, hours, seed = re.fullmatch(r"(.+)-h([\d.]+|all)-seed(\d+)", run_dir.name).groups()
        run = read_run(run_dir)
        history, finished = (run.data.get("history") or [], run.completed) if run else ([], False)
        if not finished:  # still running: its last checkpoint holds the curve so far
            states = sorted(run_dir.glob("checkpoints/step-*/trainer_state.json"))
            history = json.loads(states[-1].read_text())["history"] if states else []
        curve = [(h["step"], h["valid_cer"]) for h in history if "valid_cer" in h]
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


def main(probe_dir: str, out_dir: str, eval_every: int = 100) -> None:
    data = probes(Path(probe_dir))
    out = Path(out_dir)
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
        ax.set_ylabel("validation CER (200 utterances)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
    (out / "convergence.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({h: s["n_updates"] for h, s in summary.items()}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
