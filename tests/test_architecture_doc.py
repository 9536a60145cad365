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


# ------------------------------------------------------------------------------ the module index, from the code
SRC = DOC.parents[1] / "src" / "parp"
BEGIN = "<!-- every module: generated from the docstrings by tests/test_architecture_doc.py; PARP_UPDATE_ARCHITECTURE=1 rewrites it -->"
END = "<!-- end of the module index -->"


def module_index() -> str:
    """One line per module of the package: its dotted name and the first sentence of its docstring."""
    import ast

    lines = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = " ".join(doc.split())
        match = re.match(r"(.+?[.!?])(\s|$)", first)
        sentence = (match.group(1) if match else first) or "(no docstring)"
        sentence = sentence if len(sentence) <= 220 else sentence[:219].rsplit(" ", 1)[0] + " …"
        lines.append(f"- `{'.'.join(parts)}`: {sentence}")
    return "\n".join(lines)


def test_the_module_index_is_the_code_s():
    import os

    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "docs/ARCHITECTURE.md lost its module index markers"
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    generated = "\n" + module_index() + "\n"
    if os.environ.get("PARP_UPDATE_ARCHITECTURE") == "1":
        DOC.write_text(head + BEGIN + generated + END + tail, encoding="utf-8")
        current = generated
    assert current == generated, ("a module was added, removed or its docstring changed: rerun with "
                                  "PARP_UPDATE_ARCHITECTURE=1 and read the diff")
