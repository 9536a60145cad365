"""One writer per output folder: a second ``parp finetune`` / ``prune`` on a folder a live process is writing
refuses, instead of both writing and one silently overwriting the other.

The lock is the kernel's (``fcntl.flock`` on ``output_dir/.parp.lock``): it is released when its owner exits
or is killed, so a dead process's lock is taken over at once, with no stale-lock timeout to guess. The file
also names the owner (PID, host), for the refusal. Under torchrun only rank 0 locks: the ranks of one launch
write one run together.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are not guarded there
    fcntl = None

LOCK_NAME = ".parp.lock"
_held: dict[str, int] = {}  # lock file -> open descriptor, per process (re-entrant: a run may retake its own lock)


def _key(output_dir: Path) -> str:
    return str((output_dir / LOCK_NAME).resolve())


def acquire_output_lock(output_dir: str | Path) -> None:
    """Take ``output_dir``'s lock for this process, or raise one line naming the live owner."""
    output_dir = Path(output_dir)
    if fcntl is None or int(os.environ.get("RANK", "0")) != 0:
        return
    key = _key(output_dir)
    if key in _held:
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = os.read(fd, 512).decode("utf-8", "replace").strip()
        os.close(fd)
        try:
            who = "PID {pid} on {host}".format(**json.loads(owner))
        except (ValueError, TypeError, KeyError):
            who = "another process"
        raise ConfigError(f"--output-dir {output_dir}: {who} is writing a run there now; wait for it to end, or "
                          f"use another --output-dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    _held[key] = fd


def release_output_lock(output_dir: str | Path) -> None:
    """Let the next process write ``output_dir`` (the file stays; only the kernel lock counts)."""
    fd = _held.pop(_key(Path(output_dir)), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock
