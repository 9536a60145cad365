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

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from ..errors import ConfigError


def _write_json(path: Path, payload: Any) -> None:
    def refuse(value):
        raise TypeError(f"{type(value).__name__} is not JSON state")

    path.write_text(json.dumps(payload, default=refuse), encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable checkpoint state ({exc}); delete the checkpoint folder or use "
                          f"--overwrite-output-dir") from None


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


def save_training_state(directory: Path, accelerator, model: torch.nn.Module, optimizer, scheduler) -> None:
    """Write model, optimizer, scheduler, scaler and RNG state of this step (every process writes its RNG)."""
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
    accelerator.wait_for_everyone()


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
    scheduler.load_state_dict(_read_json(directory / "scheduler.json"))
    if accelerator.scaler is not None and (directory / "scaler.json").is_file():
        accelerator.scaler.load_state_dict(_read_json(directory / "scaler.json"))
    accelerator.step = _read_json(directory / "accelerator.json")["step"]
    rng = directory / f"rng_state_{accelerator.process_index}.json"
    if rng.is_file():
        _set_rng_state(_read_json(rng))
