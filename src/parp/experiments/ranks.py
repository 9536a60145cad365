"""One sweep under ``torchrun``: rank 0 decides and writes, every rank trains.

Cells are claimed per process (``claimed.pid``), so the ranks of one torchrun must not each claim their own: they
would train different cells and deadlock in their first collective. Instead rank 0 alone claims the next cell and
broadcasts it; all ranks then run that cell's ``run_prune`` together (DDP), and only rank 0 writes the sweep's
records, results and exports. One process (no torchrun) skips all of this.
"""

from __future__ import annotations

import os
from typing import Callable, TypeVar

from accelerate import PartialState
from accelerate.utils import broadcast_object_list

from ..errors import ParpError
from ..training.loop import _cpu_processes

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def join_process_group() -> None:
    """Start the process group the training loop will use (gloo on CPU, nccl on GPU) before the first broadcast."""
    if world_size() > 1:
        PartialState(cpu=_cpu_processes())  # the same flag train()'s Accelerator passes, so the state matches


def from_main(decide: Callable[[], T]) -> T:
    """``decide()`` on rank 0 only; every rank returns its result, or raises when rank 0 raised.

    Rank 0 re-raises its own exception; the other ranks raise a :class:`ParpError` with the same message (the
    class itself may not survive pickling), so no rank is left waiting in a collective that never comes.
    """
    if world_size() <= 1:
        return decide()

    result, failure, error = None, None, None
    if is_main():
        try:
            result = decide()
        except Exception as exc:  # noqa: BLE001 - shared with the other ranks, then re-raised below
            error, failure = exc, f"{exc}" if isinstance(exc, ParpError) else f"rank 0 failed: {exc!r}"
    result, failure = broadcast_object_list([result, failure], from_process=0)
    if error is not None:
        raise error
    if failure is not None:
        raise ParpError(failure)
    return result
