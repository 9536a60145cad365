"""``parp report --extra_masks NAME=SWEEP_FOLDER``: another sweep's masks join the mask analyses as more languages.

E.g. the character-level Mboshi sweep (real speech) next to the synthetic phone languages: its PARP / OMP masks
enter the cross-language IoU matrices, the per-layer IoU and the overlap with the pretrained mask wherever the
method and sparsity match; its error rates stay out of every error table (another task, another metric). Only
masks of the same encoder compare, so both sweeps must name the same model (``sweep.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import SWEEP, read_record
from ..results import read_results
from .tables import is_multilingual


def parse_extra_masks(items: list[str] | None) -> list[tuple[str, Path]]:
    """``["mboshi=runs/mboshi-seeds/s600"]`` -> ``[("mboshi", Path(...))]``, each folder (or results file) checked."""
    parsed = []
    for item in items or []:
        name, sep, folder = str(item).partition("=")
        if not sep or not name or not folder or "/" in name:
            raise ConfigError(f"--extra_masks expects NAME=SWEEP_FOLDER, got {item!r}")
        if not Path(folder).exists():
            raise ConfigError(f"--extra_masks {item}: {folder} does not exist")
        parsed.append((name, Path(folder)))
    if len({n for n, _ in parsed}) != len(parsed):
        raise ConfigError(f"--extra_masks: a name is given twice in {items}")
    return parsed


def _sweep_model(folder: Path) -> tuple[bool, Any]:
    if not (folder / SWEEP).is_file():
        return False, None
    return True, read_record(folder, SWEEP, "--extra_masks").get("model")


def extra_mask_rows(items: list[str] | None, base: Path, rows_here: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Result rows of the other sweeps' pruned cells at a method and sparsity this sweep has too (``rows_here``),
    renamed to NAME (NAME-LANGUAGE where a sweep has several languages), with absolute mask paths so the report
    finds them from its own folder."""
    languages = {r["language"] for r in rows_here}
    wanted = {(r["method"], r["sparsity_target"]) for r in rows_here
              if not r.get("mask_from") and r["method"] != "none" and not is_multilingual(r["method"])}
    rows = []
    for name, source in parse_extra_masks(items):
        folder = source if source.is_dir() else source.parent
        (known, model), (base_known, base_model) = _sweep_model(folder), _sweep_model(base)
        if known and base_known and model != base_model:
            raise ConfigError(f"--extra_masks {name}: {folder} pruned model {model!r}, this sweep {base_model!r}; "
                              "masks of different encoders do not compare")
        found = [r for r in read_results(source)
                 if r.get("mask") and not r.get("mask_from") and (r["method"], r["sparsity_target"]) in wanted]
        if not found:
            raise ConfigError(f"--extra_masks {name}: {source} has no finished cell of a method and sparsity this "
                              f"sweep has ({', '.join(f'{m} {s:g}' for m, s in sorted(wanted))})")
        several = len({r["language"] for r in found}) > 1
        for row in found:
            language = f"{name}-{row['language']}" if several else name
            if language in languages:
                raise ConfigError(f"--extra_masks {name}: {language!r} is already a language of this sweep")
            mask = Path(row["mask"])
            rows.append({**row, "language": language, "extra_from": str(folder),
                         "mask": str(mask if mask.is_absolute() else (folder / mask).resolve())})
    return rows
