"""Per-process claims on a sweep's cells (``claimed.pid``): several ``parp sweep`` processes sharing one sweep
folder work through its grid without running a cell twice; a claim left by a dead process is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (Linux: clock ticks since boot, from /proc), so a reused PID is told apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _claim_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid())})


def _claim_is_live(text: str) -> bool | None:
    """True/False for a readable claim, None while it is still being written. A claim from this host whose PID
    is alive but started at another time belongs to a dead worker whose PID was reused."""
    text = text.strip()
    if not text:
        return None
    try:
        claim = json.loads(text)
    except ValueError:
        return None
    if isinstance(claim, int):  # a claim of an older parp: the PID alone
        return claim != os.getpid() and _process_alive(claim)
    if not isinstance(claim, dict) or not isinstance(claim.get("pid"), int):
        return None
    if claim.get("host") != socket.gethostname():
        return True  # another machine's worker on a shared folder: its PID means nothing here
    pid = claim["pid"]
    if pid == os.getpid() or not _process_alive(pid):
        return False
    start = _process_start(pid)
    return start is None or claim.get("start") is None or start == claim["start"]


def claim_cell(directory: Path) -> bool:
    """Atomically claim a cell for this process (``claimed.pid``); a claim left by a dead process is taken over.

    The claim holds PID, host and process start time, so a PID reused by an unrelated process does not keep a
    dead worker's claim alive (and the sweep waiting forever).

    This lets several ``parp sweep`` processes on one machine share a sweep folder: on a small CPU, two
    one-thread workers finish a sweep of small models about twice as fast as one two-thread process.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / "claimed.pid"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                live = _claim_is_live(lock.read_text())
                age = time.time() - lock.stat().st_mtime
            except OSError:
                live, age = None, 0.0
            if live:
                return False
            if live is None and age < 60:
                return False  # another process created the claim and has not written it yet
            lock.unlink(missing_ok=True)  # stale claim of a killed run: take it over (the loop resumes it)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(_claim_text())
        return True
    return False
