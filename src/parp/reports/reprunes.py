"""How far PARP's mask moves from its start during the adjustment: the IoU of each re-prune's mask with the mask the
run started from (the pretrained weights' magnitude mask; for PARP-P' the transferred mask or its random twin),
against the update step.

Read from the cells' run records (``reprunes`` of the fine-tuning phase, written by ``PARPHook``); records of an
older parp carry only the IoU with the previous re-prune and are counted, not drawn.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..records import read_run
from ..results import TRANSFER, TRANSFER_RANDOM
from .transfer import OWN

METHODS = (OWN, TRANSFER, TRANSFER_RANDOM)


def reprunes_of(row: dict[str, Any], base: Path) -> list[dict[str, Any]] | None:
    """The re-prune entries a cell recorded (None where the record is gone or has none)."""
    cell = row.get("cell")
    if not cell:
        return None
    run = read_run(Path(cell) if Path(cell).is_absolute() else base / cell)
    if run is None:
        return None
    for phase in run.phases:
        if phase.facts.get("reprunes"):
            return phase.facts["reprunes"]
    return None


def reprune_histories(rows: list[dict[str, Any]], base: Path) -> tuple[dict[tuple[str, float], Any], int]:
    """``{(method, sparsity): {language: [(step, IoU with the start)]}}`` for PARP and transfer cells, the IoU the
    mean over the language's seeds (and, for transfer cells, its sources) at each step; plus the number of cells
    whose record holds no IoU with the start (older parp)."""
    collected: dict[tuple[str, float], dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    without = 0
    for row in rows:
        if row.get("method") not in METHODS:
            continue
        entries = reprunes_of(row, base) or []
        points = [(e["step"], e["iou_with_start"]) for e in entries if "iou_with_start" in e]
        if not points:
            without += 1
            continue
        by_step = collected[(row["method"], row["sparsity_target"])][row["language"]]
        for step, iou in points:
            by_step[step].append(iou)
    histories = {key: {language: [(step, statistics.fmean(v)) for step, v in sorted(steps.items())]
                       for language, steps in sorted(languages.items())}
                 for key, languages in collected.items()}
    return histories, without
