"""Score a sweep's finished cells on the validation utterances that early stopping never saw.

Why: a converged cell keeps its best model by validation CER on a fixed subset (``max_valid_utterances``, 200), and
``results.csv`` scores it on that same subset, so a cell's CER is the lowest of 10-30 noisy validations (±0.01
between neighbours): biased low, by about as much as methods differ on a plateau. The rest of the validation split
(Mboshi: 262 utterances) picked nothing; the same exported models scored there compare methods without that bias.
Needs the cells' model folders (the session's runs/); resumable: cells already in OUTPUT are skipped.

    OMP_NUM_THREADS=1 python docs/results/converged/unselected.py runs/converged/mboshi-0.167h \
        docs/results/converged/records/mboshi-0.167h/unselected.csv

It also writes OUTPUT's folder/unselected/results.csv: the rows of OUTPUT's folder/results.csv (the records) that
have an unselected score, with that score as their WER and CER, so that ``parp report --metric cer --results
.../unselected`` judges the claims on it (a cell not rescored yet is left out rather than mixed in).
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from parp.api import evaluate
from parp.data import DataArguments
from parp.data.arguments import load_utterances
from parp.results import read_results, write_results

COLUMNS = ["cell", "method", "sparsity_target", "seed", "selected_cer", "unselected_cer", "unselected_wer",
           "unselected_utterances"]


def unselected_manifest(data: DataArguments, folder: Path) -> tuple[Path, int] | None:
    """The validation utterances outside the seeded subset the run validated on, as a manifest, and their number
    (None: there are none)."""
    _, selected, _ = load_utterances(data)
    _, everything, _ = load_utterances(replace(data, max_valid_utterances=None))
    seen = {u.path for u in selected}
    rest = [u for u in everything if u.path not in seen]
    if not rest:  # a small corpus validates on all of its validation split
        return None
    path = folder / "unselected.tsv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("path\ttext\n")
        for u in rest:
            f.write(f"{Path(u.path).resolve()}\t{u.text}\n")  # read_manifest made paths relative to the cwd
    return path, len(rest)


def main(sweep: Path, output: Path) -> None:
    done = {}
    if output.is_file():
        with open(output, encoding="utf-8", newline="") as f:
            done = {row["cell"]: row for row in csv.DictReader(f)}
    manifests: dict[str, tuple[Path, int] | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in read_results(sweep):
            model = sweep / row["cell"] / "model"
            if row["cell"] in done or not model.is_dir():
                continue
            arguments = json.loads((sweep / row["cell"] / "run.json").read_text(encoding="utf-8"))["arguments"]
            data = DataArguments(**arguments["data"])
            key = json.dumps(arguments["data"], sort_keys=True)
            if key not in manifests:
                manifests[key] = unselected_manifest(data, Path(tempfile.mkdtemp(dir=tmp)))
            if manifests[key] is None:
                continue
            manifest, n = manifests[key]
            metrics = evaluate(str(model), str(manifest), output_dir=str(Path(tmp) / "eval"), progress=False,
                               allow_unknown_chars=True)
            done[row["cell"]] = {"cell": row["cell"], "method": row["method"], "sparsity_target": row["sparsity_target"],
                                 "seed": row["seed"], "selected_cer": row["cer"], "unselected_cer": metrics["cer"],
                                 "unselected_wer": metrics["wer"], "unselected_utterances": n}
            print(f"{row['cell']}: CER selected {row['cer']:.4f}, unselected {metrics['cer']:.4f} ({n} utts)",
                  flush=True)
            output.parent.mkdir(parents=True, exist_ok=True)
            with open(output.with_suffix(".tmp"), "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows(sorted(done.values(), key=lambda r: r["cell"]))
            output.with_suffix(".tmp").replace(output)


def write_rescored(records: Path, scores: Path) -> None:
    """records/unselected/results.{csv,json}: the records' rows scored on the unselected utterances."""
    if not (records / "results.csv").is_file() or not scores.is_file():
        return
    with open(scores, encoding="utf-8", newline="") as f:
        unselected = {row["cell"]: row for row in csv.DictReader(f)}
    rows = []
    for row in read_results(records):
        score = unselected.get(row["cell"])
        if score is None:
            continue
        for key in ("cell", "mask"):  # relative to the records folder, one level up from unselected/
            if row.get(key) and not Path(row[key]).is_absolute():
                row[key] = f"../{row[key]}"
        rows.append({**row, "cer": float(score["unselected_cer"]), "wer": float(score["unselected_wer"])})
    (records / "unselected").mkdir(exist_ok=True)
    write_results(records / "unselected", rows)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: unselected.py SWEEP_FOLDER OUTPUT.csv")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
    write_rescored(Path(sys.argv[2]).parent, Path(sys.argv[2]))
