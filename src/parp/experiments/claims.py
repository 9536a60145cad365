"""Per-process claims on a sweep's cells (``claimed.pid``): several ``parp sweep`` processes sharing one sweep
folder work through its grid without running a cell twice; a claim left by a dead process is taken over.

A claim's owner refreshes the file's modification time every ``HEARTBEAT_SECONDS`` while it runs the cell
(:func:`claim_heartbeat`). A claim is taken over when its owner is known dead (this host, PID gone or reused:
at once) or when it has missed its beats for ``STALE_AFTER_SECONDS`` (a claim naming another host or container,
whose PID means nothing here; an empty or garbage claim file). A waiting worker therefore takes a dead worker's
cell over within ``STALE_AFTER_SECONDS`` plus one poll of the sweep, and resumes it from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
STALE_AFTER_SECONDS = 60.0  # four missed beats


def _process_alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negative numbers name process groups, not a worker
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
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


def _claim_is_live(text: str, age: float) -> bool:
    """Whether the claim (its text, and seconds since its owner last beat) still holds. A claim from this host
    whose PID is alive but started at another time belongs to a dead worker whose PID was reused."""
    beating = age < STALE_AFTER_SECONDS
    try:
        claim = json.loads(text) if text.strip() else None
    except ValueError:
        claim = None
    if isinstance(claim, int) and not isinstance(claim, bool):  # a claim of an older parp: the PID alone
        return claim != os.getpid() and _process_alive(claim)
    if not isinstance(claim, dict) or not isinstance(claim.get("pid"), int):
        return beating  # still being written, or garbage: taken over once it is as old as a stale claim
    if claim.get("host") != socket.gethostname():
        return beating  # another machine's (or container's) worker: its PID means nothing here, its beats do
    pid = claim["pid"]
    if pid == os.getpid() or not _process_alive(pid):
        return False
    start = _process_start(pid)
    return start is None or claim.get("start") is None or start == claim["start"]


def claim_cell(directory: Path) -> bool:
    """Atomically claim a cell for this process (``claimed.pid``); a claim left by a dead process is taken over.

    The claim holds PID, host and process start time, so a PID reused by an unrelated process does not keep a
    dead worker's claim alive (and the sweep waiting forever).

    The owner keeps the claim alive with :func:`claim_heartbeat` while it runs the cell.

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
                age = time.time() - lock.stat().st_mtime
                live = _claim_is_live(lock.read_text(errors="replace"), age)
            except OSError:
                live = True  # the claim vanished or changed under us: look again on the next pass
            if live:
                return False
            log.warning("taking over the stale claim %s", lock)
            lock.unlink(missing_ok=True)  # stale claim of a killed run: take it over (the loop resumes it)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(_claim_text())
        return True
    return False


@contextmanager
def claim_heartbeat(directory: Path, every: float | None = None):
    """While the body runs, refresh this process's claim on ``directory`` every ``every`` seconds (default
    ``HEARTBEAT_SECONDS``), so workers on other hosts see it alive; stops if the claim is no longer ours."""
    lock = directory / "claimed.pid"
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS if every is None else every):
            try:
                claim = json.loads(lock.read_text())
                if not isinstance(claim, dict) or (claim.get("pid"), claim.get("host")) != (os.getpid(),
                                                                                             socket.gethostname()):
                    log.warning("%s: the claim is no longer this process's; heartbeat stopped", lock)
                    return
                os.utime(lock)
            except (OSError, ValueError):
                return

    thread = threading.Thread(target=beat, name="parp-claim-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
