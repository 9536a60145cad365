"""The same cell (language, method, seed 1) fine-tuned on the H200 and again on the 2-core CPU: how far apart?

The seed-1 transfer cells of this folder start from OMP masks made again on the CPU (the H200's were lost with
its runs/ folder); this prints, per donor language, PER of the dense and OMP cells on both machines, and the spread
of the differences, to set beside the seed spread. Run from the repository root after the collect:
    .venv/bin/python docs/results/cross-language-phones-gpu/seed1-cpu/machines.py
"""

import statistics

from parp.results import read_results

GPU = "docs/results/cross-language-phones-gpu/records/results.csv"
CPU = "runs/cross-language-phones-cpu/results.csv"


def per(path: str) -> dict[tuple[str, str], float]:
    return {(r["language"], r["method"]): r["per"] for r in read_results(path)
            if r["seed"] == 1 and r["method"] in ("none", "omp")}


gpu, cpu = per(GPU), per(CPU)
differences = []
print("| language | method | PER H200 | PER CPU | CPU - H200 |\n|---|---|---|---|---|")
for key in sorted(set(gpu) & set(cpu)):
    differences.append(cpu[key] - gpu[key])
    print(f"| {key[0]} | {key[1]} | {gpu[key]:.3f} | {cpu[key]:.3f} | {differences[-1]:+.3f} |")
print(f"\n{len(differences)} cells: mean {statistics.mean(differences):+.4f}, sd {statistics.stdev(differences):.4f}, "
      f"largest |difference| {max(map(abs, differences)):.4f}")
