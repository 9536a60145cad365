"""Dataclass arguments <-> CLI flags <-> YAML/JSON config files.

Each command is a list of dataclasses (as in transformers' ``run_speech_recognition_ctc.py``). A config file
holds the same keys (flat, or nested under the dataclass names); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml
from transformers import HfArgumentParser

from .errors import ConfigError


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of option names to values")
    return data


def _flatten(data: dict[str, Any], sections: set[str]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in sections and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return {k.replace("-", "_"): v for k, v in flat.items()}


def parse_dataclasses(types: Sequence[type], argv: Sequence[str], prog: str, description: str = "") -> tuple:
    """Parse ``argv`` (with an optional ``--config FILE``) into one instance of each dataclass in ``types``."""
    parser = HfArgumentParser(list(types), prog=prog, description=description)
    parser.add_argument("--config", default=None, metavar="FILE", help="YAML or JSON file with any of these options.")
    parser.error = _raise_config_error  # one ``parp: error:`` line (exit 2) instead of argparse's usage block
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(list(argv))
    if known.config:
        section_names = {t.__name__ for t in types} | {_section(t) for t in types}
        values = _flatten(load_config_file(known.config), section_names)
        fields = {f.name for t in types for f in dataclasses.fields(t)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"--config {known.config}: unknown option(s) {', '.join(unknown)}")
        parser.set_defaults(**values)
    try:
        parsed = parser.parse_args_into_dataclasses(list(argv), return_remaining_strings=False)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    instances = tuple(p for p in parsed if dataclasses.is_dataclass(p))
    for instance in instances:
        check_types(instance)
    return instances


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` fits a dataclass field's type (config files bypass argparse's conversion)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_accepts(args[0], v) for v in value) if args else isinstance(value, list)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def check_types(instance: Any) -> None:
    """One line naming an option whose value (from a config file) has the wrong type, e.g. ``max_steps: null``."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if f.name in hints and not _accepts(hints[f.name], value):
            kind = getattr(hints[f.name], "__name__", None) or str(hints[f.name]).replace("typing.", "")
            raise ConfigError(f"--{f.name.replace('_', '-')} must be {kind}, got {value!r}")


def _raise_config_error(message: str):
    raise ConfigError(f"{message} (see --help)")


def _section(t: type) -> str:
    """``TrainConfig`` -> ``train``, ``DataArguments`` -> ``data`` (names usable as config sections)."""
    name = t.__name__
    for suffix in ("Arguments", "Config", "Args"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.lower()
