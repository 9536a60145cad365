"""Every ``parp.…`` name that docs/ARCHITECTURE.md quotes in backticks exists (module, then attributes)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def quoted_names() -> list[str]:
    return sorted(set(re.findall(r"`(parp(?:\.[A-Za-z_]\w*)*)", DOC.read_text(encoding="utf-8"))))


def resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_the_doc_quotes_names():
    assert len(quoted_names()) > 30


def test_every_quoted_name_exists():
    assert [n for n in quoted_names() if not resolves(n)] == []


def test_a_missing_name_is_caught():
    assert not resolves("parp.training.hooks.TrainingHook.on_before_checkpoint")
    assert not resolves("parp.nowhere.thing")
