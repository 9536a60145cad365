"""The JSON run record written beside every output: what ran, on what, for how long, with what result.

One record per command run. Phases (e.g. ``finetune``, ``prune``, ``finetune-2``) carry their own wall time
and step counts, so the cost of a pruning method is read off the record rather than guessed.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers, for reproducibility."""
    versions = {"python": platform.python_version()}
    for name in ("parp", "torch", "transformers", "accelerate", "safetensors", "jiwer", "numpy"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware() -> dict[str, Any]:
    import torch  # lazy: only a writer needs it; reading records loads no torch

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
        # the command's argument dataclasses in order (a model card renders the equivalent command line from them)
        self.argument_types = [type(v) for v in arguments.values() if dataclasses.is_dataclass(v)] \
            if isinstance(arguments, dict) else []
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



# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Phase:
    """One recorded phase, read back: a fine-tuning (it has ``steps``) or a step without training."""

    name: str
    facts: dict[str, Any]

    @property
    def is_training(self) -> bool:
        return "steps" in self.facts

    @property
    def total_steps(self) -> int:
        """Every update of the phase, those of earlier (killed) processes included."""
        return self.facts.get("total_steps", self.facts.get("steps", 0)) or 0

    @property
    def final(self) -> dict[str, Any]:
        return self.facts.get("final", {})

    @property
    def train_seconds(self) -> float:
        return self.facts.get("train_seconds", 0.0)

    @property
    def reused(self) -> bool:
        return "reused_from" in self.facts

    @property
    def cost_seconds(self) -> float:
        return phase_cost_seconds(self.facts)

    @property
    def elsewhere_seconds(self) -> float:
        """The part of the cost spent outside the process that wrote the record (reused or before a resume)."""
        return self.facts.get("reused_wall_seconds", 0.0) + self.facts.get("earlier_wall_seconds", 0.0)


@dataclass(frozen=True)
class Run:
    """A ``run.json`` read back: the one reader of the format (sweeps, reuse, resume checks, reports, cards)."""

    path: Path
    data: dict[str, Any]

    @property
    def command(self) -> str | None:
        return self.data.get("command")

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def arguments(self) -> dict[str, Any]:
        return self.data.get("arguments") or {}

    def section(self, name: str) -> dict[str, Any]:
        """One argument section (``data``, ``model``, ``train``, ``prune`` ...); empty when absent."""
        return self.arguments.get(name) or {}

    @property
    def encoder(self) -> dict[str, Any] | None:
        """The encoder the run started from (``models.encoder_identity``); None in records of older parp."""
        return self.data.get("encoder")

    @property
    def metrics(self) -> dict[str, Any]:
        return self.data.get("metrics") or {}

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.data.get("history") or []

    @property
    def wall_seconds(self) -> float:
        return self.data.get("wall_seconds", 0.0)

    @property
    def phases(self) -> list[Phase]:
        return [Phase(p.get("name", ""), p) for p in self.data.get("phases", [])]

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    @property
    def phase_costs(self) -> dict[str, float]:
        return {p.name: p.cost_seconds for p in self.phases}

    @property
    def cost_seconds(self) -> float:
        """Wall time the run cost in all: this process's, plus reused phases and work done before a resume."""
        return round(self.wall_seconds + sum(p.elsewhere_seconds for p in self.phases if p.name != "export"), 3)


def record_path(path: str | Path) -> Path:
    """``run.json`` of an output folder (or the record file itself)."""
    path = Path(path)
    return path / "run.json" if path.is_dir() or path.suffix != ".json" else path


def read_run(path: str | Path) -> Run | None:
    """The run record in ``path`` (a folder or the file), or None where there is none or it cannot be read
    (e.g. half written by a killed process)."""
    file = record_path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return Run(file, data) if isinstance(data, dict) else None


def load_run(path: str | Path, what: str = "") -> Run:
    """Like :func:`read_run`, but a missing or unreadable record is one clear error (``what`` names the flag)."""
    run = read_run(path)
    if run is None:
        raise ConfigError(f"{what + ' ' if what else ''}{path}: no readable run.json there")
    return run


def is_completed(path: str | Path) -> bool:
    """Whether the output folder holds the record of a run that finished."""
    run = read_run(path)
    return run is not None and run.completed


# --------------------------------------------------------------------------------- records beside run.json
# what a pretraining run (``parp pretrain``), an SSL-gain comparison (``parp pretrain downstream``) and a sweep write
# next to their outputs; read and written here so no module parses them itself
PRETRAINING, DOWNSTREAM, SWEEP = "pretraining.json", "downstream.json", "sweep.json"


def read_record(folder: str | Path, name: str, what: str = "") -> dict[str, Any]:
    """The JSON record ``name`` in ``folder``; a missing or unreadable one is one clear error (``what``: the flag)."""
    file = Path(folder) / name
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = "missing" if isinstance(exc, FileNotFoundError) else "not readable JSON"
        raise ConfigError(f"{what + ' ' if what else ''}{file}: {reason}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what + ' ' if what else ''}{file}: not a JSON object")
    return data


def write_record(folder: str | Path, name: str, record: dict[str, Any]) -> Path:
    """Write the JSON record ``name`` into ``folder`` (created), atomically."""
    file = Path(folder) / name
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(file.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    tmp.replace(file)
    return file
