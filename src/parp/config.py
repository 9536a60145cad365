"""Dataclass arguments <-> CLI flags <-> YAML/JSON config files.

Each command is a list of dataclasses (as in transformers' ``run_speech_recognition_ctc.py``). A config file
holds the same keys (flat, or nested under the dataclass names); flags given on the command line win. A lone
``.json``/``.yaml`` first argument is the config file, as in that recipe (``parp finetune run.json``).

Every option also answers to the name the transformers CTC recipe gives it (``--model_name_or_path``,
``--gradient_accumulation_steps``, ...), on the command line and in config files: the names are listed once here
(``HF_NAMES``, ``HF_SWITCHES``) and apply to any dataclass field so named; a field can add its own with
``metadata={"aliases": [...]}``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml
from transformers import HfArgumentParser

from .errors import ConfigError


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")

# parp field -> the name(s) transformers' run_speech_recognition_ctc.py / TrainingArguments give the same option
HF_NAMES: dict[str, tuple[str, ...]] = {
    "model": ("model_name_or_path",),
    "hf_dataset": ("dataset_name",),
    "hf_config": ("dataset_config_name",),
    "hf_train_split": ("train_split_name",),
    "hf_valid_split": ("eval_split_name",),
    "audio_column": ("audio_column_name",),
    "text_column": ("text_column_name",),
    "max_train_utterances": ("max_train_samples",),
    "max_valid_utterances": ("max_eval_samples",),
    "max_utterances": ("max_eval_samples",),
    "min_seconds": ("min_duration_in_seconds",),
    "max_seconds": ("max_duration_in_seconds",),
    "grad_accum_steps": ("gradient_accumulation_steps",),
    "eval_every": ("eval_steps",),
    "save_every": ("save_steps",),
    "log_every": ("logging_steps",),
    "lr_schedule": ("lr_scheduler_type",),
    "num_workers": ("dataloader_num_workers",),
}
# recipe switches that set a parp field: name -> (field, value when on, value when off; None = leave as is)
HF_SWITCHES: dict[str, tuple[str, Any, Any]] = {
    "disable_tqdm": ("progress", False, True),
    "fp16": ("mixed_precision", "fp16", None),
    "bf16": ("mixed_precision", "bf16", None),
}


def shared(source: type, name: str, *, default: Any = dataclasses.MISSING, help: str | None = None) -> Any:
    """A field another command's dataclass owns (``DataArguments.valid_fraction`` in ``SweepConfig``), declared
    from it: its default (and help, unless ``help`` says more) live in one place. ``default`` sets another
    default on purpose (``parp demo``'s short schedule); ``shared_fields`` lists both kinds."""
    owned = {f.name: f for f in dataclasses.fields(source)}[name]
    metadata = {**owned.metadata, **({"help": help} if help else {}),
                SHARED_KEY: (source, name, default is not dataclasses.MISSING)}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    if default is not dataclasses.MISSING:
        return dataclasses.field(default=default, metadata=metadata)
    if owned.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=owned.default_factory, metadata=metadata)
    return dataclasses.field(default=owned.default, metadata=metadata)


SHARED_KEY = "parp_shared"  # metadata of a ``shared`` field: (source dataclass, its field, default overridden?)
# metadata: the type a config file may give a field besides the flag's (a YAML mapping where flags take a list)
CONFIG_TYPE_KEY = "config_type"


def shared_fields(cls: type, source: type | None = None, overridden: bool | None = None) -> list[str]:
    """Names of ``cls``'s fields declared with ``shared`` (from ``source``; with or without their own default)."""
    names = []
    for f in dataclasses.fields(cls):
        origin = f.metadata.get(SHARED_KEY)
        if origin and (source is None or origin[0] is source) and (overridden is None or origin[2] == overridden):
            names.append(f.name)
    return names


def shared_values(instance: Any, source: type) -> dict[str, Any]:
    """The values of ``instance``'s fields shared from ``source``, as keyword arguments of ``source``."""
    return {name: getattr(instance, name) for name in shared_fields(type(instance), source)}


def _metadata_aliases(field: dataclasses.Field) -> list[str]:
    aliases = field.metadata.get("aliases", [])
    return [a.lstrip("-") for a in ([aliases] if isinstance(aliases, str) else aliases)]


def alias_table(types: Sequence[type]) -> tuple[dict[str, str], dict[str, tuple[str, Any, Any]]]:
    """Aliases (name -> field) and switches (name -> (field, on, off)) that apply to these dataclasses.

    A name never shadows a real field of the same command, and the first field to claim a name keeps it.
    """
    fields = [f for t in types for f in dataclasses.fields(t)]
    names = {f.name for f in fields}
    aliases: dict[str, str] = {}
    for f in fields:
        for alias in (*HF_NAMES.get(f.name, ()), *_metadata_aliases(f)):
            if alias not in names and alias not in aliases:
                aliases[alias] = f.name
    switches = {k: v for k, v in HF_SWITCHES.items() if v[0] in names and k not in names and k not in aliases}
    return aliases, switches


def _string_to_bool(value: str) -> bool:
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


class _Switch(argparse.Action):
    """``--overwrite_output_dir [true|false]``: sets another field to its on/off value."""

    def __init__(self, option_strings, dest, on=None, off=None, **kwargs):
        self.on, self.off = on, off
        super().__init__(option_strings, dest, nargs="?", const=True, type=_string_to_bool, metavar="BOOL",
                         default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, value, option_string=None):
        chosen = self.on if value else self.off
        if chosen is not None:
            setattr(namespace, self.dest, chosen)


class _Parser(HfArgumentParser):
    """HfArgumentParser whose fields also answer to the names in ``alias_table``."""

    def __init__(self, types: Sequence[type], **kwargs):
        self._parp_aliases, self._parp_switches = alias_table(types)
        super().__init__(list(types), **kwargs)
        for name, (dest, on, off) in self._parp_switches.items():
            self.add_argument(f"--{name}", dest=dest, action=_Switch, on=on, off=off,
                              help=f"transformers' name: sets {dest} to {on!r}")
        for t in types:  # ``metadata={"positional": True}``: the field is also the command's positional argument
            for f in dataclasses.fields(t):
                if f.metadata.get("positional"):
                    self.add_argument(f.name, nargs="?", default=argparse.SUPPRESS, metavar=f.name.upper(),
                                      help=f"{f.metadata.get('help', '')} (or --{f.name.replace('_', '-')})")

    def _parse_dataclass_field(self, parser, field):  # HfArgumentParser calls it as self._parse_dataclass_field
        extra = [f"--{a}" for a, target in self._parp_aliases.items() if target == field.name]
        private = (SHARED_KEY, CONFIG_TYPE_KEY, "positional")  # argparse knows none of them
        if extra or any(key in field.metadata for key in private):
            field = copy.copy(field)
            metadata = {k: v for k, v in field.metadata.items() if k not in private}
            field.metadata = types.MappingProxyType({**metadata, **({"aliases": extra} if extra else {})})
        HfArgumentParser._parse_dataclass_field(parser, field)


def translate_keys(values: dict[str, Any], types: Sequence[type]) -> dict[str, Any]:
    """Config-file keys under transformers' names -> parp field names (switches become their field's value)."""
    aliases, switches = alias_table(types)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in switches:
            dest, on, off = switches[key]
            chosen = on if value else off
            if chosen is not None:
                out[dest] = chosen
        else:
            out[aliases.get(key, key)] = value
    return out


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
    argv = list(argv)
    if argv and not argv[0].startswith("-") and Path(argv[0]).suffix.lower() in CONFIG_SUFFIXES:
        argv = ["--config", *argv]  # ``parp finetune run.json``, as in the transformers recipe
    parser = _Parser(list(types), prog=prog, description=description)
    parser.add_argument("--config", default=None, metavar="FILE", help="YAML or JSON file with any of these options.")
    parser.error = _raise_config_error  # one ``parp: error:`` line (exit 2) instead of argparse's usage block
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(list(argv))
    if known.config:
        section_names = {t.__name__ for t in types} | {_section(t) for t in types}
        values = translate_keys(_flatten(load_config_file(known.config), section_names), types)
        fields = {f.name for t in types for f in dataclasses.fields(t)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"--config {known.config}: unknown option(s) {', '.join(unknown)}")
        parser.set_defaults(**values)
        for action in parser._actions:
            if isinstance(action, _Switch):
                action.default = argparse.SUPPRESS  # set_defaults gives a switch its field's value otherwise
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
        if f.name in hints and not _accepts(hints[f.name], value) and not (
                CONFIG_TYPE_KEY in f.metadata and _accepts(f.metadata[CONFIG_TYPE_KEY], value)):
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
