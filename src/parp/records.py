"""The JSON run record written beside every output: what ran, on what, for how long, with what result.

One record per command run. Phases (e.g. ``finetune``, ``prune``, ``finetune-2``) carry their own wall time
and step counts, so the cost of a pruning method is read off the record rather than guessed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers, for reproducibility."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("parp", "torch", "transformers", "accelerate", "safetensors", "jiwer", "numpy"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count(),
                            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class RunRecord:
    """Accumulates a run's facts and writes them to ``path`` (rewritten after every phase, so a killed
    run still leaves an honest partial record)."""

    def __init__(self, path: str | Path, command: str, arguments: Any = None):
        self.path = Path(path)
        self.started = time.time()
        self.data: dict[str, Any] = {
            "command": command,
            "argv": sys.argv,
            "arguments": jsonable(arguments),
            "versions": library_versions(),
            "hardware": hardware(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "phases": [],
            "data": {},
            "metrics": {},
            "status": "running",
        }

    def set(self, key: str, value: Any) -> None:
        self.data[key] = jsonable(value)
        self.write()

    def update(self, key: str, values: dict) -> None:
        self.data.setdefault(key, {}).update(jsonable(values))
        self.write()

    @contextmanager
    def phase(self, name: str, **facts: Any):
        """Time a phase; whatever the body puts into the yielded dict is stored with it."""
        entry: dict[str, Any] = {"name": name, **jsonable(facts)}
        t0 = time.time()
        try:
            yield entry
        finally:
            entry["wall_seconds"] = round(time.time() - t0, 3)
            self.data["phases"].append(jsonable(entry))
            self.write()

    def finish(self, status: str = "completed") -> None:
        self.data["status"] = status
        self.data["wall_seconds"] = round(time.time() - self.started, 3)
        # a resumed phase's own "steps" are only those of the last process; "total_steps" counts them all
        self.data["total_finetune_steps"] = sum(p.get("total_steps", p.get("steps", 0)) or 0
                                                for p in self.data["phases"])
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


def phase_cost_seconds(phase: dict[str, Any]) -> float:
    """Wall time a recorded phase cost: reused from another run, or this run's own, plus the time earlier
    processes spent on it before the checkpoint a resumed phase started from."""
    if "reused_wall_seconds" in phase:
        return phase["reused_wall_seconds"]
    return round(phase.get("wall_seconds", 0.0) + phase.get("earlier_wall_seconds", 0.0), 3)

