"""Copy a sweep's finished cells into a committed records folder: each cell's run.json, results.csv rows merged.

Why: on this project's machines runs/ does not outlive a session; only what is committed does. A records folder
holds the cells of every session (a later copy of a cell replaces the earlier one) and is what the READMEs and
``parp report --results RECORDS SWEEP`` read.

    parp sweep --config GRID.yaml --collect_only        # the sweep's results.csv lists every finished cell
    python docs/results/keep_records.py runs/converged/mboshi-0.167h docs/results/converged/records/mboshi-0.167h
    python docs/results/keep_records.py runs/real-languages/cross-1h docs/results/real-languages/records/cross-1h --masks

--masks: also keep the final mask of every pruned cell that is not a transfer cell (about 0.6 MB each for the
embedded encoder), so the mask analyses of ``parp report`` (IoU across languages and seeds, per layer, with the
pretrained mask) can be rebuilt from the records alone after runs/ is gone.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from parp.results import read_results, write_results


def keep(sweep: Path, records: Path, masks: bool = False) -> list[str]:
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
        mask = sweep / (row.get("mask") or "")
        if masks and row.get("mask") and (row["sparsity_target"] or 0) > 0 and not row.get("mask_from") and mask.is_file():
            (records / row["mask"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mask, records / row["mask"])
        kept[row["cell"]] = row
        copied.append(row["cell"])
    write_results(records, list(kept.values()))
    return copied


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--masks"]
    if len(arguments) != 2:
        raise SystemExit(__doc__.strip().splitlines()[0] + "\nusage: keep_records.py SWEEP_FOLDER RECORDS_FOLDER [--masks]")
    for cell in keep(Path(arguments[0]), Path(arguments[1]), masks="--masks" in sys.argv):
        print("kept", cell)
