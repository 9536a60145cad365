"""Model card (README.md) for every exported model folder, built from the run's own record.

The Hub reads the YAML front matter (library, base model, metrics); people read the table: base model, data,
method, target vs achieved sparsity, metrics, parp version and the command that made it.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..config import _section


def _base_model(arguments: dict) -> str:
    model = (arguments.get("model") or {}).get("model")
    return model or "parp-ssl-small (embedded in parp)"


def _command(record: dict, argument_types: Sequence[type] = ()) -> str:
    """The command line as typed, or (called from Python) the equivalent one: the options of ``argument_types``
    (the command's dataclasses, in its order) that differ from their defaults."""
    argv = record.get("argv") or []
    script = Path(argv[0]) if argv else Path()
    if script.name == "parp" or (script.name == "__main__.py" and script.parent.name == "parp"):
        return "parp " + shlex.join(str(a) for a in argv[1:])
    name = record.get("command", "")
    flags: list[str] = []
    if argument_types:
        arguments = record.get("arguments") or {}
        for t in argument_types:
            values = arguments.get(_section(t)) or {}
            defaults = t() if all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                                  for f in dataclasses.fields(t)) else None
            for f in dataclasses.fields(t):
                value = values.get(f.name)
                if f.name in values and (defaults is None or value != getattr(defaults, f.name)):
                    flag = f"--{f.name.replace('_', '-')}"
                    if isinstance(value, bool):
                        flags.append(flag if value else f"--no-{f.name.replace('_', '-')}")
                    elif isinstance(value, list):
                        flags += [flag, *map(str, value)]
                    elif value is not None:
                        flags += [flag, str(value)]
    return shlex.join(["parp", name, *flags])


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


TRANSFORMERS_USAGE = ("Loads with plain transformers, no parp needed:\n\n```python\n"
                      "from transformers import AutoModelForCTC, Wav2Vec2Processor\n\n"
                      "model = AutoModelForCTC.from_pretrained(\"path/to/this/folder\")  # zeros are in the weights\n"
                      "processor = Wav2Vec2Processor.from_pretrained(\"path/to/this/folder\")\n```")


def model_card(record: dict, metrics: dict[str, float], sparsity: dict[str, float] | None = None,
               argument_types: Sequence[type] = (), usage: str = TRANSFORMERS_USAGE, extra: str = "") -> str:
    """Markdown card for one exported folder; ``metrics`` are that folder's validation metrics. ``usage`` says how
    to load the folder (default: plain transformers); ``extra`` is Markdown added before the closing line (e.g.
    the ONNX export's own facts)."""
    arguments = record.get("arguments") or {}
    prune = arguments.get("prune") or {}
    data = record.get("data") or {}
    version = (record.get("versions") or {}).get("parp", "unknown")
    method = prune.get("method", "none (full fine-tuning)")
    if prune.get("initial_mask"):
        method += f" (PARP-P', initial mask {prune['initial_mask']})"
    base = _base_model(arguments)
    front = {"library_name": "transformers", "pipeline_tag": "automatic-speech-recognition",
             "tags": ["ctc", "pruning", "parp", f"parp-{prune.get('method', 'finetune')}"],
             "base_model": base if "embedded" not in base else None,
             "model-index": [{"name": "parp", "results": [{
                 "task": {"type": "automatic-speech-recognition"},
                 "dataset": {"name": data.get("source", "unknown"), "type": "custom", "split": "validation"},
                 "metrics": [{"type": k, "value": round(float(v), 5)} for k, v in metrics.items()
                             if isinstance(v, (int, float))]}]}]}
    front = {k: v for k, v in front.items() if v is not None}
    rows = [("base model", base), ("training data", f"{data.get('source', '?')}: "
             f"{data.get('train_utterances', '?')} utterances, {data.get('train_hours', '?')} h "
             f"(validation {data.get('valid_utterances', '?')} utterances)"),
            ("method", method)]
    if sparsity:
        rows.append(("sparsity target / achieved",
                     f"{_fmt(sparsity.get('target'))} / {_fmt(sparsity.get('achieved'))} of the pruned "
                     f"weights ({prune.get('scope', 'global')} magnitude; see sparsity.json per layer)"))
    train = arguments.get("train") or {}
    rows += [("fine-tuning", f"{record.get('total_finetune_steps', train.get('max_steps', '?'))} updates, "
              f"lr {train.get('learning_rate', '?')}, seed {train.get('seed', '?')}"),
             ("validation metrics", ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()) or "none"),
             ("parp version", version)]
    table = "\n".join(["| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows])
    extra_block = f"{extra}\n\n" if extra else ""
    return (f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n\n"
            f"# {base.split('/')[-1]} fine-tuned for CTC, pruned with parp ({method.split(' ')[0]})\n\n"
            f"{table}\n\nMade with\n\n```bash\n{_command(record, argument_types)}\n```\n\n"
            f"{usage}\n\n{extra_block}"
            f"The full record (arguments, library versions, hardware, per-phase time) is the run's `run.json`.\n")


def write_model_card(folder, record: dict, metrics: dict[str, float], sparsity: dict[str, float] | None = None,
                     argument_types: Sequence[type] = (), **sections: str) -> Path:
    """Write README.md into ``folder``; ``sections``: ``usage`` / ``extra`` of :func:`model_card`."""
    path = Path(folder) / "README.md"
    path.write_text(model_card(record, metrics, sparsity, argument_types, **sections), encoding="utf-8")
    return path
