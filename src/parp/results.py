"""The results table of a sweep (``results.csv`` / ``results.json``): one row per finished cell and seed.

The file between the experiments that write it and the reports that read it; rows written by an older parp lack
the newer columns (e.g. ``iou_with_pretrained_mask``, ``mask_from``) and read back with those as None.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from .errors import ConfigError

RESULT_COLUMNS = [
    "method", "language", "train_hours", "mask_from", "sparsity_target", "sparsity_achieved", "seed", "wer", "cer", "per", "finetune_steps",
    "best_step", "stopped_early", "finetunings", "wall_seconds", "phase_wall_seconds", "dense_bytes", "compressed_bytes", "reused_dense",
    "iou_with_language_mask", "iou_with_pretrained_mask", "mask", "cell",
]

# the ``method`` of a transfer cell (PARP-P' on B from A's OMP mask) and of its control (from A's random twin):
# written by parp.experiments, read by parp.reports
TRANSFER, TRANSFER_RANDOM = "transfer", "transfer-random"


def write_results(output_dir: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    """``results.csv`` (the per-phase times as a JSON column) and ``results.json``, both complete rewrites."""
    output_dir = Path(output_dir)
    json_path, csv_path = output_dir / "results.json", output_dir / "results.csv"
    json_path.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
    with open(csv_path.with_suffix(".csv.tmp"), "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v) if isinstance(v, dict) else ("" if v is None else v))
                             for k, v in row.items()})
    csv_path.with_suffix(".csv.tmp").replace(csv_path)
    return csv_path, json_path


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` (or ``results.json``, or a sweep folder) with numbers parsed back."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    if not path.is_file():
        raise ConfigError(f"{path}: no results file (run parp sweep first)")
    try:
        return _read_results(path)
    except (UnicodeDecodeError, csv.Error, ValueError, TypeError, AttributeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ConfigError(f"{path}: not a results table written by parp sweep ({reason})") from None


def _read_results(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("a JSON list of rows is needed")
        return rows
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in ("cell", "method") if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    numbers = {"train_hours", "sparsity_target", "sparsity_achieved", "wer", "cer", "per", "wall_seconds",
               "iou_with_language_mask",
               "iou_with_pretrained_mask"}
    integers = {"seed", "finetune_steps", "best_step", "finetunings", "dense_bytes", "compressed_bytes"}
    parsed = []
    for row in rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if value == "" or value is None:
                out[key] = None
            elif key in numbers:
                out[key] = float(value)
            elif key in integers:
                out[key] = int(float(value))
            elif key == "phase_wall_seconds":
                out[key] = json.loads(value)
            elif key in ("reused_dense", "stopped_early"):
                out[key] = value.lower() == "true"
            else:
                out[key] = value
        parsed.append(out)
    return parsed
