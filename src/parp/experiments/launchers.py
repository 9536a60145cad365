"""Where a sweep's cells run: in this process (``local``, the default) or as Ray tasks (``ray``) on a cluster.

Under Ray the driver (this process) is the one scheduler: it submits each pending cell once, as a task asking for
``cell_cpus`` / ``cell_gpus``, as soon as the cell it continues (the dense cell of OMP/IMP, the previous cell of
an IMP chain) has finished. No PID claims are needed, so nothing probes processes of other hosts. A task whose
worker dies (node lost, OOM kill) is resubmitted by Ray up to ``max_retries`` times and resumes the cell from its
last checkpoint. Every task calls the same per-cell function as the local launcher, so the cells' records,
``results.csv`` / ``results.json`` and "finished cells are not rerun" are exactly those of a local sweep. The
sweep folder must be on a file system every node sees (the driver reads each finished cell's ``run.json``).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers.utils import logging as hf_logging

from ..errors import ClusterError, ConfigError, ParpError
from ..records import is_completed
from ..results import write_results
from .cells import Cell, CellRunner, LanguageData, collect_results, done_line, pending_cells, prerequisite
from .multilingual import run_multilingual

if TYPE_CHECKING:
    from .grid import SweepConfig

LAUNCHERS = ("local", "ray")
OBJECT_STORE_BYTES = 128 * 1024**2  # a local instance passes only configs and summaries between processes


@dataclass
class LaunchArguments:
    """How ``parp sweep`` runs its cells (the grid and the schedule are SweepConfig's)."""

    launcher: str = field(default="local", metadata={
        "help": "local: this process runs the cells (several processes on one host may share the folder); "
                "ray: every cell is a Ray task (pip install 'parp[ray]')."})
    ray_address: str | None = field(default=None, metadata={
        "help": "Ray cluster to join ('auto' on a node where `ray start` ran, or ray://HEAD:10001); "
                "none: start a local Ray instance with --ray_num_cpus CPUs."})
    ray_num_cpus: int | None = field(default=None, metadata={
        "help": "CPUs of the local Ray instance (default: all of this machine's)."})
    cell_cpus: float = field(default=1.0, metadata={"help": "CPUs each cell's Ray task asks for."})
    cell_gpus: float = field(default=0.0, metadata={
        "help": "GPUs each cell's Ray task asks for (1: one GPU per cell; 0.5: two cells share one)."})
    max_retries: int = field(default=3, metadata={
        "help": "Times Ray reruns a cell whose worker died; the rerun resumes from the cell's last checkpoint."})


def validate_launch(launch: LaunchArguments) -> None:
    if launch.launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher: unknown launcher {launch.launcher!r} (choose from {', '.join(LAUNCHERS)})")
    if launch.launcher != "ray" and (launch.ray_address or launch.ray_num_cpus):
        raise ConfigError("--ray_address / --ray_num_cpus need --launcher ray")
    if launch.cell_cpus < 0 or launch.cell_gpus < 0 or (launch.cell_cpus == 0 and launch.cell_gpus == 0):
        raise ConfigError(f"--cell_cpus {launch.cell_cpus:g} / --cell_gpus {launch.cell_gpus:g}: "
                          "a cell needs a positive share of CPUs or GPUs")
    if launch.max_retries < 0:
        raise ConfigError(f"--max_retries must be >= 0, got {launch.max_retries}")
    if launch.ray_num_cpus is not None and launch.ray_num_cpus < 1:
        raise ConfigError(f"--ray_num_cpus must be >= 1, got {launch.ray_num_cpus}")


def _cell_task(runner: CellRunner, config: SweepConfig, language: LanguageData, cell: Cell, output_dir: str,
               driver: tuple[str, int, bool]) -> tuple[dict[str, Any], str]:
    """The body of a cell's Ray task: the launcher-independent per-cell function, plus the node it ran on."""
    _like_driver(driver)
    return runner(config, language, cell, Path(output_dir)), socket.gethostname()


def _call(driver: tuple[str, int, bool], function, *args):
    _like_driver(driver)
    return function(*args)


def _driver_state() -> tuple[str, int, bool]:
    return os.getcwd(), hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()


def _like_driver(driver: tuple[str, int, bool]) -> None:
    """In this worker: the driver's folder (relative manifest / output paths mean what they mean there, and the
    cell records the same arguments as under the local launcher), transformers' verbosity and progress bars."""
    cwd, verbosity, bars = driver
    if os.path.isdir(cwd):  # on a node that mounts the shared file system where the driver does
        os.chdir(cwd)
    hf_logging.set_verbosity(verbosity)
    hf_logging.enable_progress_bar() if bars else hf_logging.disable_progress_bar()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--launcher ray needs Ray: pip install 'parp[ray]' (or pip install 'ray>=2.9')") from None
    return ray


def start_ray(launch: LaunchArguments, log_to_driver: bool = True) -> bool:
    """Join ``ray_address`` or start a local instance; False where Ray was already initialised by the caller.

    ``log_to_driver``: the workers' output (each cell's log) is printed by this process too."""
    ray = _import_ray()
    address = ray_address(launch)
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=log_to_driver, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=launch.ray_num_cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                     log_to_driver=log_to_driver, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"cannot start or join {where}: {first}") from None
    return True


def ray_address(launch: LaunchArguments) -> str | None:
    """--ray_address, else RAY_ADDRESS (set by ``ray job submit`` and KubeRay's RayJob), else None: a local instance."""
    return launch.ray_address or os.environ.get("RAY_ADDRESS") or None


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Ray retries a HOST:PORT where nothing listens for ever; refuse it in seconds instead ('auto' is Ray's)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"--ray_address {address}: nothing answers there ({exc.strerror or exc}); start the "
                           "head node with `ray start --head` (its GCS port, 6379 by default) first") from None


def _check_resources(ray, launch: LaunchArguments, joined: bool) -> None:
    """A cell asking for more than any node has would wait forever: refuse it (a cluster may still grow: warn)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    fits = any(r.get("CPU", 0) >= launch.cell_cpus and r.get("GPU", 0) >= launch.cell_gpus for r in nodes)
    if fits:
        return
    message = (f"no Ray node has {launch.cell_cpus:g} CPU(s) and {launch.cell_gpus:g} GPU(s) for one cell "
               f"(nodes: {[{k: r.get(k, 0) for k in ('CPU', 'GPU')} for r in nodes]})")
    if not joined:
        raise ClusterError(message)
    logging.getLogger("parp").warning("%s; the cells wait until such a node joins", message)


def run_cells_on_ray(config: SweepConfig, launch: LaunchArguments, languages: list[LanguageData],
                     cells: list[Cell], output_dir: Path, runner: CellRunner) -> None:
    """Run every pending cell (and the multilingual run, if asked) as Ray tasks; rewrite the results as they end."""
    ray = _import_ray()
    if not pending_cells(cells, output_dir) and not config.multilingual:  # nothing to run: start nothing
        _schedule(ray, None, config, languages, cells, output_dir, runner, _driver_state())
        return
    started_here = start_ray(launch)
    try:
        address = ray_address(launch)
        _check_resources(ray, launch, joined=bool(address) or not started_here)
        resources = ray.cluster_resources()
        print(f"sweep: on Ray ({'cluster ' + address if address else 'local instance'}, "
              f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs); each cell asks for "
              f"{launch.cell_cpus:g} CPU(s), {launch.cell_gpus:g} GPU(s)", flush=True)
        task = ray.remote(num_cpus=launch.cell_cpus, num_gpus=launch.cell_gpus, max_retries=launch.max_retries,
                          retry_exceptions=False)(_cell_task)
        _schedule(ray, task, config, languages, cells, output_dir, runner, _driver_state())
        if config.multilingual:  # one more task; the driver's own run_multilingual then finds it completed
            multi = ray.remote(num_cpus=launch.cell_cpus, num_gpus=launch.cell_gpus, max_retries=launch.max_retries,
                               retry_exceptions=False)(_call)
            _get(ray, multi.remote(_driver_state(), run_multilingual, config, languages, output_dir),
                 "the multilingual run")
    finally:
        if started_here:
            ray.shutdown()


def _schedule(ray, task, config: SweepConfig, languages: list[LanguageData], cells: list[Cell], output_dir: Path,
              runner: CellRunner, driver: tuple[str, int, bool]) -> None:
    """Submit each pending cell once, when the cell it continues has finished; collect results as tasks end."""
    by_name = {language.name: language for language in languages}
    total = len(cells)
    waiting = dict(pending_cells(cells, output_dir))
    for i, cell in enumerate(cells, start=1):
        if i not in waiting:
            print(f"[{i}/{total}] {cell.label()}: completed earlier, skipped", flush=True)
    running: dict[Any, tuple[int, Cell]] = {}
    while waiting or running:
        for i, cell in list(waiting.items()):
            needed = prerequisite(config, cell)  # always a cell of this grid (validate_sweep puts it there)
            if needed is not None and not is_completed(needed.directory(output_dir)):
                continue  # submitted once the cell it continues has finished
            directory = cell.directory(output_dir)
            print(f"[{i}/{total}] {cell.label()}: submitted to Ray -> {directory}", flush=True)
            running[task.remote(runner, config, by_name[cell.language], cell, str(output_dir), driver)] = (i, cell)
            del waiting[i]
        if not running:  # cannot happen with a grid from validate_sweep; never wait on nothing
            raise ConfigError(f"cells {[c.label() for c in waiting.values()]} wait for cells that never run")
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            i, cell = running.pop(ref)
            try:
                summary, host = _get(ray, ref, cell.label())
            except Exception:
                for other in running:  # the sweep stops here, as the local launcher does; rerun to resume
                    ray.cancel(other, force=True)
                raise
            print(done_line(i, total, cell, summary, reused=bool(summary.get("reused_dense"))) + f" on {host}", flush=True)
            write_results(output_dir, collect_results(output_dir, cells))


def _get(ray, ref, what: str):
    """A task's result; a cell's own error (bad data, a mask that does not fit) as that error, one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ParpError):
            raise cause from None
        message = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
        raise ClusterError(f"{what}: {type(cause).__name__ if cause is not None else 'task failed'}: {message} "
                           "(the cell's worker log has the traceback)") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.RayError) as exc:
        raise ClusterError(f"{what}: its Ray worker died more often than --max_retries allows "
                           f"({type(exc).__name__}); run the sweep again to resume it") from None
