"""scripts/gpu/grid_here.py: on a lent GPU each converged grid runs from a copy of its YAML that reads the carried
audio and gives every language its own N(d), keeping the language's own options (Yoruba's allow_unknown_chars)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grid_here(tmp_path, n: dict) -> tuple[str, Path]:
    (tmp_path / "n.json").write_text(json.dumps(n))
    out = tmp_path / "real-1h.yaml"
    done = subprocess.run([sys.executable, str(ROOT / "scripts/gpu/grid_here.py"),
                           str(ROOT / "docs/results/converged/real-1h.yaml"), str(tmp_path / "n.json"), "1", str(out)],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip(), out


def test_every_language_trains_to_its_own_n_on_the_carried_audio(tmp_path):
    from parp.experiments.cells import cell_arguments
    from parp.experiments.grid import load_sweep_config, validate_sweep

    printed, out = grid_here(tmp_path, {"yo-h1": 2300, "rw-h1": 1900, "mboshi-h1": None})
    assert printed == "yo 2300, rw 1900"
    config = load_sweep_config(out)
    languages, cells = validate_sweep(config)
    by_name = {lang.name: lang for lang in languages}
    for cell in cells:
        data, _, train, _ = cell_arguments(config, by_name[cell.language], cell, tmp_path)
        assert train.max_steps == {"yo": 2300, "rw": 1900}[cell.language]
        assert data.train_manifest == f"runs/gpu-audio/{cell.language}/manifest.tsv"
        assert data.allow_unknown_chars is True  # the grid's own option for both languages, kept


def test_a_grid_waits_while_one_of_its_languages_has_no_n(tmp_path):
    printed, out = grid_here(tmp_path, {"yo-h1": 2300, "rw-h1": None})
    assert printed == "" and not out.exists()
