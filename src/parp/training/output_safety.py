"""``--overwrite-output-dir`` deletes only what parp wrote, and never in a folder that cannot be meant.

A typo such as ``--output-dir ''`` or ``.`` next to ``--overwrite-output-dir`` must not cost the user the
manifest, the audio and the notes in that folder: such folders are refused before anything is touched, and
in any folder only parp's own outputs (run record, checkpoints, model folders, logs, phase folders) are
removed. A sub-folder holding its own ``run.json`` is another run and is kept.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from ..data.manifest import read_manifest
from ..errors import ConfigError, ParpError

# every file and folder parp finetune / prune writes at the top of its output folder
_PARP_NAMES = {"run.json", "checkpoints", "model", "best", "model-compact", "model.sparse.safetensors", "logs",
               "finetune"}
_PARP_PATTERN = re.compile(r"run\.rank\d+\.json|run(\.rank\d+)?\.json\.tmp|finetune-\d+|\.parp-write-test-\d+")


def is_parp_output(entry: Path) -> bool:
    """Whether ``entry`` (a child of an output folder) is something parp finetune / prune wrote there."""
    if entry.name not in _PARP_NAMES and not _PARP_PATTERN.fullmatch(entry.name):
        return False
    return not (entry.is_dir() and (entry / "run.json").exists())  # another run's folder, whatever its name


def _within(folder: Path, protected: Path) -> bool:
    """``folder`` is ``protected`` or one of its ancestors (deleting in it would reach into ``protected``)."""
    return folder == protected or folder in protected.parents


def _data_folders(data: dict[str, Any]) -> list[tuple[str, Path]]:
    """(what, folder) of every manifest and audio file the run reads (audio only where the manifest reads)."""
    found = []
    for flag in ("train_manifest", "valid_manifest"):
        manifest = data.get(flag)
        if not manifest:
            continue
        manifest = Path(manifest).expanduser().resolve()
        found.append((f"the --{flag.replace('_', '-')}", manifest.parent))
        try:
            utterances = read_manifest(manifest, data.get("audio_column") or "path", None, None, None)
        except ParpError:
            continue  # data loading names the broken manifest later
        folders = {Path(u.path).expanduser().resolve().parent for u in utterances}
        found += [(f"audio of {manifest.name}", folder) for folder in sorted(folders)]
    return found


def refuse_unsafe_overwrite(output_dir: str | Path, data: dict[str, Any] | None) -> None:
    """One line, before anything is touched, when ``--overwrite-output-dir`` would delete in a folder that holds
    the user's files: '', '.', '..', '~', '/', the working directory, the home folder or one of their ancestors,
    the folder of the manifest or of the audio (or an ancestor of them)."""
    raw = str(output_dir).strip()
    folder = Path(raw).expanduser().resolve()
    why = None
    if raw in ("", ".", "..", "~") or folder == Path(folder.anchor):
        why = "it is not a run folder"
    elif _within(folder, Path.cwd().resolve()):
        why = "it holds the working directory"
    elif _within(folder, Path.home().resolve()):
        why = "it holds the home folder"
    else:
        for what, protected in _data_folders(data or {}):
            if _within(folder, protected):
                why = f"it holds {what}"
                break
    if why:
        raise ConfigError(f"--output-dir {raw!r} with --overwrite-output-dir: refused, {why}; nothing was deleted. "
                          f"Give the run its own folder (e.g. --output-dir runs/NAME)")


def remove_parp_outputs(output_dir: Path) -> list[str]:
    """Delete parp's outputs in ``output_dir`` and nothing else; returns the names removed."""
    removed = []
    for entry in sorted(output_dir.iterdir()) if output_dir.is_dir() else []:
        if not is_parp_output(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed
