"""A run resumes only with the settings that made its checkpoints: anything else would record a run that never was.

Settings that change the result (sparsity, learning rate, seed, data, steps ...) must match the stored run; the
way out is ``--overwrite-output-dir`` or a new ``--output-dir``. Settings that only change how a run is watched
(progress bar, eval/save/log frequency, workers, time budget) may change and are recorded as such.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import jsonable, read_run

# may differ between a run and its resumption: where files go and how the run is watched, not what it learns
HARMLESS_ON_RESUME = frozenset({"output_dir", "progress", "resume", "save_every", "log_every", "eval_every",
                                "num_workers", "max_minutes", "overwrite_output_dir", "compressed_checkpoint",
                                "report_to",
                                # the dense phase it names is step for step the one the run would train itself
                                "dense_checkpoint",
                                # speed options: same schedule, at most float-rounding differences
                                "torch_compile", "gradient_checkpointing", "tf32"})


def has_checkpoint(output_dir: Path) -> bool:
    """True when some phase under ``output_dir`` left a resumable checkpoint."""
    return output_dir.is_dir() and any(output_dir.rglob("checkpoints/latest"))


def _changes(stored: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for section in sorted(set(stored) | set(new)):
        a, b = stored.get(section) or {}, new.get(section) or {}
        if not isinstance(a, dict) or not isinstance(b, dict):
            continue
        for key in sorted(set(a) & set(b)):  # a setting newer than the stored run cannot be compared
            if a[key] != b[key]:
                changes[key] = (a[key], b[key])
    return changes


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_changed(stored: dict, new: dict, where: str) -> dict[str, list]:
    """Raise one line naming every result-affecting setting that differs; return the harmless changes."""
    changes = _changes(stored, new)
    bad = {k: v for k, v in changes.items() if k not in HARMLESS_ON_RESUME}
    if bad:
        listed = ", ".join(f"{_flag(k)} {_short(a)} -> {_short(b)}" for k, (a, b) in bad.items())
        raise ConfigError(f"{where} holds a run with other settings ({listed}); resuming would mix them: rerun "
                          f"with the same settings, or start over with --overwrite-output-dir or a new --output-dir")
    return {k: [a, b] for k, (a, b) in changes.items() if k != "output_dir"}


def check_writable(output_dir: Path) -> None:
    """A file in the way, a read-only or full disk: one line now instead of a traceback after the work."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"--output-dir {output_dir}: a file is in the way (an output folder is needed)")
    probe = output_dir / f".parp-write-test-{os.getpid()}"  # per process: torchrun ranks check the same folder
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--output-dir {output_dir}: cannot write there ({exc.strerror or exc})") from None


def prepare_output_dir(output_dir: str | Path, overwrite: bool, command: str, arguments: dict) -> dict[str, list]:
    """Before a run writes its record: start over if asked, else refuse a resume whose settings changed.

    ``arguments`` are the run's dataclasses by section (as stored in ``run.json``); returns the harmless
    changes (setting -> [before, now]) for the new record.
    """
    output_dir = Path(output_dir)
    check_writable(output_dir)
    if overwrite:
        if output_dir.is_dir() and ((output_dir / "run.json").exists() or (output_dir / "checkpoints").exists()):
            if int(os.environ.get("RANK", "0")) == 0:
                shutil.rmtree(output_dir)
        return {}
    if not has_checkpoint(output_dir):
        return {}
    earlier = read_run(output_dir)
    if earlier is None or not earlier.arguments or earlier.command is None:
        raise ConfigError(f"--output-dir {output_dir} holds checkpoints but no readable run.json, so its settings "
                          f"cannot be checked; start over with --overwrite-output-dir or a new --output-dir")
    stored, stored_command = earlier.arguments, earlier.command
    if stored_command != command:
        raise ConfigError(f"--output-dir {output_dir} holds a 'parp {stored_command}' run, not a 'parp {command}' "
                          f"run; start over with --overwrite-output-dir or use a new --output-dir")
    return refuse_changed(stored, jsonable(arguments), f"--output-dir {output_dir}")
