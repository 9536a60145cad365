"""A run resumes only with the settings that made its checkpoints: anything else would record a run that never was.

Settings that change the result (sparsity, learning rate, seed, data, steps ...) must match the stored run; the
way out is ``--overwrite-output-dir`` or a new ``--output-dir``. Settings that only change how a run is watched
(progress bar, eval/save/log frequency, workers, time budget) may change and are recorded as such.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import Run, jsonable, read_run
from .output_lock import acquire_output_lock, release_output_lock
from .output_safety import refuse_unsafe_overwrite, remove_parp_outputs

log = logging.getLogger(__name__)

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


def refuse_changed(stored: dict, new: dict, where: str, what: str = "a run") -> dict[str, list]:
    """Raise one line naming every result-affecting setting that differs; return the harmless changes."""
    changes = _changes(stored, new)
    bad = {k: v for k, v in changes.items() if k not in HARMLESS_ON_RESUME}
    if bad:
        consequence = "rerunning would replace it" if "completed" in what else "resuming would mix them"
        listed = ", ".join(f"{_flag(k)} {_short(a)} -> {_short(b)}" for k, (a, b) in bad.items())
        raise ConfigError(f"{where} holds {what} with other settings ({listed}); {consequence}: rerun "
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


def prepare_output_dir(output_dir: str | Path, overwrite: bool, command: str,
                       arguments: dict) -> tuple[dict[str, list], Run | None]:
    """Before a run writes its record: start over if asked, else refuse a run whose settings changed.

    ``arguments`` are the run's dataclasses by section (as stored in ``run.json``). A folder holding a run record
    (finished or not, checkpointed or not) is compared with the new command the same way: other settings are
    refused with the setting named. Returns the harmless changes (setting -> [before, now]) for the new record,
    and the earlier run where it already completed with these settings (nothing is to be rerun).
    """
    if not str(output_dir).strip():
        raise ConfigError("--output-dir is empty: give the run its own folder (e.g. --output-dir runs/NAME)")
    new = jsonable(arguments)
    if overwrite:
        refuse_unsafe_overwrite(output_dir, new.get("data"))
    output_dir = Path(output_dir)
    check_writable(output_dir)
    acquire_output_lock(output_dir)  # held until the run ends (``release_output_lock``) or the process does
    try:
        return _compare_with_earlier(output_dir, overwrite, command, new)
    except BaseException:
        release_output_lock(output_dir)
        raise


def _compare_with_earlier(output_dir: Path, overwrite: bool, command: str,
                          new: dict) -> tuple[dict[str, list], Run | None]:
    if overwrite:
        if int(os.environ.get("RANK", "0")) == 0:
            removed = remove_parp_outputs(output_dir)
            if removed:
                log.warning("--overwrite-output-dir: removed %s from %s", ", ".join(removed), output_dir)
        return {}, None
    has_record = (output_dir / "run.json").exists()
    if not has_record and not has_checkpoint(output_dir):
        return {}, None
    earlier = read_run(output_dir)
    if earlier is None or not earlier.arguments or earlier.command is None:
        what = "checkpoints but no readable run.json" if not has_record else "an unreadable run.json"
        raise ConfigError(f"--output-dir {output_dir} holds {what}, so its settings cannot be checked; start over "
                          f"with --overwrite-output-dir or use a new --output-dir")
    if earlier.command != command:
        raise ConfigError(f"--output-dir {output_dir} holds a 'parp {earlier.command}' run, not a 'parp {command}' "
                          f"run; start over with --overwrite-output-dir or use a new --output-dir")
    state = "a completed run" if earlier.completed else "a run"
    changes = refuse_changed(earlier.arguments, new, f"--output-dir {output_dir}", state)
    return changes, (earlier if earlier.completed else None)
