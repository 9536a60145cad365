"""Resumable training state as safetensors + JSON only: a run folder handed on never runs code when resumed.

Accelerate's ``save_state``/``load_state`` unpickle the scheduler (``custom_checkpoint_0.pkl``, with
``weights_only=False``), the optimizer and the RNG states, so a planted ``__reduce__`` payload would run on
resume. Here tensors go to safetensors and everything else to JSON; nothing read back is ever unpickled.

Files of one checkpoint folder::

    model.safetensors          the unwrapped model's weights (written by the main process)
    optimizer.safetensors      per-parameter optimizer tensors (``<param index>.<name>``)
    optimizer.json             the rest of the optimizer state (param groups, non-tensor per-parameter values)
    scheduler.json             LR scheduler state_dict (plain numbers)
    scaler.json                fp16 gradient scaler state (only with fp16)
    rng_state_<rank>.json      python, numpy, torch (and CUDA) generator states of each process
    accelerator.json           accelerate's micro-step counter (gradient accumulation phase)
"""

from __future__ import annotations

import errno
import json
import random
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from ..errors import ConfigError, StorageError


def _write_json(path: Path, payload: Any) -> None:
    def refuse(value):
        raise TypeError(f"{type(value).__name__} is not JSON state")

    path.write_text(json.dumps(payload, default=refuse), encoding="utf-8")


def _start_over(path: Path) -> str:
    """How to go on from a damaged checkpoint (parp keeps only the newest one, so there is none to fall back to)."""
    checkpoints = next((p for p in path.parents if p.name == "checkpoints"), path.parent)
    return (f"delete {checkpoints} to train this phase again from its start (the run's settings are kept), or "
            f"start over with --overwrite-output-dir")


def _damaged(path: Path, reason: str) -> ConfigError:
    return ConfigError(f"{path}: damaged checkpoint state ({reason}); {_start_over(path)}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(path, f"unreadable: {exc}") from None


# trainer_state.json keys the loop resumes from (besides its progress counters, passed as ``required``)
_TRAINER_KEYS = {"step": int, "epoch": int, "history": list}


def read_trainer_state(directory: Path, required=()) -> dict[str, Any]:
    """The loop's ``trainer_state.json`` of a checkpoint, checked for every key the loop resumes from."""
    path = directory / "trainer_state.json"
    saved = _read_json(path)
    if not isinstance(saved, dict):
        raise _damaged(path, f"a JSON object is needed, found {type(saved).__name__}")
    missing = [k for k in (*_TRAINER_KEYS, *required) if k not in saved]
    wrong = [k for k, kind in _TRAINER_KEYS.items() if k in saved and not isinstance(saved[k], kind)]
    if missing or wrong:
        raise _damaged(path, "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                                     wrong and f"{', '.join(wrong)} of the wrong type"])))
    return saved


def read_hook_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """The hooks' tensors of a checkpoint (``hooks.safetensors``; none where the hooks kept no tensors)."""
    path = directory / "hooks.safetensors"
    if not path.exists():
        return {}
    try:
        return load_file(str(path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise _damaged(path, (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]) from None


# --------------------------------------------------------------------------------------------- optimizer


def _optimizer_state(optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, per_param = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                per_param.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "per_param": per_param}


def _load_optimizer(optimizer, tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in plain.get("per_param", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
              for group in plain["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ------------------------------------------------------------------------------------------------- RNG


def _rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss],
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# ------------------------------------------------------------------------------------------- save / load


@contextmanager
def disk_full_is_one_line(directory: Path, model: torch.nn.Module):
    """A full disk while writing checkpoint ``directory``: its partial files go, ``checkpoints/latest`` still names
    the last complete checkpoint (it is moved only after a checkpoint is whole), and the error names the folder
    and about how much space one checkpoint needs."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        pointer = directory.parent / "latest"
        last = pointer.read_text().strip() if pointer.is_file() else None
        if last != directory.name:  # never the last good checkpoint itself
            shutil.rmtree(directory, ignore_errors=True)
        needed = 3 * sum(p.numel() * p.element_size() for p in model.parameters())  # weights + two Adam moments
        try:
            free = f", {shutil.disk_usage(directory.parent).free / 1e6:.0f} MB free"
        except OSError:
            free = ""
        kept = f"the last good checkpoint ({directory.parent / last}) is kept" if last else "no checkpoint was kept"
        raise StorageError(f"{directory}: disk full while writing a checkpoint (one needs about "
                           f"{needed / 1e6:.0f} MB{free}); {kept}: free space, then run the same command again "
                           f"to resume") from None


def save_training_state(directory: Path, accelerator, model: torch.nn.Module, optimizer, scheduler) -> None:
    """Write model, optimizer, scheduler, scaler and RNG state of this step (every process writes its RNG)."""
    with disk_full_is_one_line(directory, accelerator.unwrap_model(model)):
        _save_training_state(directory, accelerator, model, optimizer, scheduler)
    accelerator.wait_for_everyone()


def _save_training_state(directory: Path, accelerator, model: torch.nn.Module, optimizer, scheduler) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), str(directory / "model.safetensors"))
        tensors, plain = _optimizer_state(optimizer)
        save_file(tensors, str(directory / "optimizer.safetensors"))
        _write_json(directory / "optimizer.json", plain)
        _write_json(directory / "scheduler.json", scheduler.state_dict())
        if accelerator.scaler is not None:
            _write_json(directory / "scaler.json", accelerator.scaler.state_dict())
        _write_json(directory / "accelerator.json", {"step": accelerator.step})
    _write_json(directory / f"rng_state_{accelerator.process_index}.json", _rng_state())


def load_training_state(directory: Path, accelerator, model: torch.nn.Module, optimizer, scheduler) -> None:
    """Restore what ``save_training_state`` wrote; reads safetensors and JSON files only."""
    if not (directory / "optimizer.json").is_file():
        raise ConfigError(f"{directory}: checkpoint written by an older parp (pickled state, which parp no longer "
                          f"loads); start over with --overwrite-output-dir or a new --output-dir")
    try:
        missing, unexpected = load_model(accelerator.unwrap_model(model), str(directory / "model.safetensors"),
                                         strict=False)
        if missing or unexpected:
            raise ValueError("tensors " + ", ".join(sorted(missing)[:3] + sorted(unexpected)[:3]))
        _load_optimizer(optimizer, load_file(str(directory / "optimizer.safetensors")),
                        _read_json(directory / "optimizer.json"))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
        raise ConfigError(f"{directory}: checkpoint does not fit this run or is damaged ({reason}); use "
                          f"--overwrite-output-dir or a new --output-dir") from None
    if accelerator.scaler is not None and (directory / "scaler.json").is_file():
        accelerator.scaler.load_state_dict(_read_json(directory / "scaler.json"))
    try:
        scheduler.load_state_dict(_read_json(directory / "scheduler.json"))
        accelerator.step = _read_json(directory / "accelerator.json")["step"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(directory, f"scheduler.json or accelerator.json: {type(exc).__name__} {exc}") from None
    rng = directory / f"rng_state_{accelerator.process_index}.json"
    if rng.is_file():
        try:
            _set_rng_state(_read_json(rng))
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, OverflowError) as exc:
            raise _damaged(rng, f"not the RNG states parp writes: {type(exc).__name__} {exc}"[:200]) from None
