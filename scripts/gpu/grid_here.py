"""A converged grid's YAML for the GPU machine: every language reads its carried audio and trains to its own N(d).

    python scripts/gpu/grid_here.py GRID.yaml N.json SIZE OUT.yaml

N.json is ``convergence.py``'s output ({"LANG-hSIZE": N or null}). Writes OUT.yaml and prints "LANG N(d), ..."; prints
nothing (and writes nothing) while a language of the grid has no N(d) yet. The language's own options in GRID.yaml
(``allow_unknown_chars``, ``max_seconds``, ``token_unit``) are kept: passing ``--languages LANG=PATH`` on the command
line instead would drop them.
"""

from __future__ import annotations

import json
import sys

from parp.config import load_config_file
import yaml


def main(grid: str, n_file: str, size: str, out: str) -> None:
    config = load_config_file(grid)
    n = json.load(open(n_file, encoding="utf-8"))
    chosen = []
    for language, value in list(config["languages"].items()):
        steps = n.get(f"{language}-h{size}")
        if not steps:
            return
        value = dict(value) if isinstance(value, dict) else {"train": value}
        value.update(train=f"runs/gpu-audio/{language}/manifest.tsv", max_steps=int(steps))
        config["languages"][language] = value
        chosen.append(f"{language} {steps}")
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    print(", ".join(chosen))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: grid_here.py GRID.yaml N.json SIZE OUT.yaml")
    main(*sys.argv[1:])
