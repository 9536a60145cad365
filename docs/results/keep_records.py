"""Copy a sweep's finished cells into a committed records folder: each cell's run.json, results.csv rows merged.

Why: on this project's machines runs/ does not outlive a session; only what is committed does. A records folder
holds the cells of every session (a later copy of a cell replaces the earlier one) and is what the READMEs and
``parp report --results RECORDS SWEEP`` read.

    parp sweep --config GRID.yaml --collect_only        # the sweep's results.csv lists every finished cell
    python docs/results/keep_records.py runs/converged/mboshi-0.167h docs/results/converged/records/mboshi-0.167h
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from parp.results import read_results, write_results


def keep(sweep: Path, records: Path) -> list[str]:
    """Merge ``sweep``'s finished cells into ``records``; the cells copied."""
    kept = {row["cell"]: row for row in read_results(records)} if (records / "results.csv").is_file() else {}
    copied = []
    for row in read_results(sweep):
        source = sweep / row["cell"] / "run.json"
        if not source.is_file():
            raise SystemExit(f"{source}: missing (collect the sweep first: parp sweep --config ... --collect_only)")
        target = records / row["cell"] / "run.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        kept[row["cell"]] = row
        copied.append(row["cell"])
    write_results(records, list(kept.values()))
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[0] + "\nusage: keep_records.py SWEEP_FOLDER RECORDS_FOLDER")
    for cell in keep(Path(sys.argv[1]), Path(sys.argv[2])):
        print("kept", cell)
