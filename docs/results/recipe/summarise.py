"""Table of the recipe trials: ``python docs/results/recipe/summarise.py`` (after the trials of trials.txt ran).

Reads every ``runs/recipe/NAME/run.json`` through parp's one run-record reader and writes ``trials.json`` (the
machine-readable record: flags, validation CER curve, final CER/WER, wall time) and ``trials.md`` beside this file.
A trial whose run folder is gone (an earlier session's) keeps its row from the committed ``trials.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from parp.records import read_run

HERE = Path(__file__).resolve().parent
RUNS = Path("runs/recipe")


def trials() -> list[dict]:
    committed = HERE / "trials.json"
    earlier = {r["trial"]: r for r in json.loads(committed.read_text(encoding="utf-8"))} if committed.is_file() else {}
    rows = []
    for line in (HERE / "trials.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, flags = line.partition(" ")
        path = RUNS / name / "run.json"
        run = read_run(path) if path.is_file() else None
        if run is None or not run.completed:
            if name in earlier:
                rows.append(earlier[name])
            continue
        final = run.metrics.get("final") or {}
        rows.append({"trial": name, "flags": flags.strip(), "task": "demo (synthetic fi)" if name.startswith("demo")
                     else "mboshi", "command": run.command,
                     "valid_cer": [(h["step"], round(h["valid_cer"], 4)) for h in run.history if "valid_cer" in h],
                     "cer": final.get("cer"), "wer": final.get("wer"),
                     "steps": sum(p.total_steps for p in run.phases if p.is_training),
                     "wall_seconds": round(run.wall_seconds, 1), "hardware": run.data.get("hardware")})
    return rows


def main() -> None:
    rows = trials()
    (HERE / "trials.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["| trial | task | updates | validation CER along the run | final CER | final WER | wall s (1 thread) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        curve = " → ".join(f"{c:.3f}" for _, c in r["valid_cer"])
        lines.append(f"| {r['trial']} | {r['task']} | {r['steps']} | {curve} | **{r['cer']:.3f}** | {r['wer']:.3f} | "
                     f"{r['wall_seconds']:.0f} |")
    (HERE / "trials.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
