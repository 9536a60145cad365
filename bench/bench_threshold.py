"""Time parp's exact global magnitude threshold + mask vs torch.nn.utils.prune.global_unstructured.

    python bench/bench_threshold.py [--layers 24 --hidden 1024 --ffn 4096] [--sparsity 0.7] [--skip-reference]

Default shapes are wav2vec2-large's prunable weights (24 x (4 x 1024^2 + 2 x 1024 x 4096) = 302 M fp32).
The reference runs in a subprocess (it needs >13 GB and about a minute) so its peak RSS is its own.
Peak extra memory is the rise of VmHWM (peak RSS, /proc/self/status) over the RSS before the step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from parp.sparsity.threshold import global_kth_smallest, keep_masks  # noqa: E402


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def build_weights(layers: int, hidden: int, ffn: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(hidden, hidden)] * 4 + [(ffn, hidden), (hidden, ffn)]
    return [torch.randn(s, generator=gen) * 0.02 for _ in range(layers) for s in shapes]


def run_reference(args) -> None:
    """Child process: torch.nn.utils.prune.global_unstructured on the same weights; prints JSON."""
    import torch.nn.utils.prune as prune

    weights = build_weights(args.layers, args.hidden, args.ffn)
    modules = []
    for w in weights:
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        modules.append(lin)
    del weights
    base = _status_kb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    prune.global_unstructured([(m, "weight") for m in modules], pruning_method=prune.L1Unstructured,
                              amount=args.sparsity)
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    zeros = sum(int((m.weight == 0).sum()) for m in modules)
    print(json.dumps({"seconds": seconds, "extra_mb": (peak - base) / 1024, "zeros": zeros}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--ffn", type=int, default=4096)
    ap.add_argument("--sparsity", type=float, default=0.7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-reference", action="store_true", help="do not run torch.nn.utils.prune")
    ap.add_argument("--reference-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_child:
        run_reference(args)
        return

    weights = build_weights(args.layers, args.hidden, args.ffn)
    total = sum(w.numel() for w in weights)
    k = int(round(args.sparsity * total))
    print(f"{len(weights)} tensors, {total / 1e6:.1f} M fp32 weights ({total * 4 / 2**30:.2f} GiB), "
          f"sparsity {args.sparsity} -> k = {k}, torch threads = {torch.get_num_threads()}")

    best_thr = best_mask = float("inf")
    thr_extra = mask_extra = 0.0
    for _ in range(args.repeats):
        base = _status_kb("VmRSS")
        _reset_peak()
        start = time.perf_counter()
        thr = global_kth_smallest(weights, k)
        t_thr = time.perf_counter() - start
        thr_extra = max(thr_extra, (_status_kb("VmHWM") - base) / 1024)
        start = time.perf_counter()
        keep = keep_masks(weights, thr)
        t_mask = time.perf_counter() - start
        mask_extra = max(mask_extra, (_status_kb("VmHWM") - base) / 1024)
        best_thr, best_mask = min(best_thr, t_thr), min(best_mask, t_mask)
        zeros = sum(m.numel() - int(m.sum()) for m in keep)
        del keep
    mask_mb = total / 2**20
    print(f"parp threshold ({thr.method}): best {best_thr:.3f} s, peak extra memory {thr_extra:.0f} MB")
    print(f"parp bool masks: best {best_mask:.3f} s; threshold+masks {best_thr + best_mask:.3f} s; peak RSS rise "
          f"{mask_extra:.0f} MB (the {mask_mb:.0f} MB of bool masks can reuse memory freed earlier, so the "
          f"honest bound is threshold extra + masks = {thr_extra + mask_mb:.0f} MB)")
    print(f"parp pruned {zeros} weights (k = {k}): {'OK' if zeros == k else 'MISMATCH'}")

    if args.skip_reference:
        return
    del weights
    cmd = [sys.executable, __file__, "--reference-child", "--layers", str(args.layers), "--hidden",
           str(args.hidden), "--ffn", str(args.ffn), "--sparsity", str(args.sparsity)]
    ref = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    print(f"torch.nn.utils.prune.global_unstructured: {ref['seconds']:.2f} s, peak extra memory "
          f"{ref['extra_mb']:.0f} MB, zeros {ref['zeros']}")
    # zeros in the reference can exceed k only if the random weights contained exact zeros (they do not)
    print(f"same number of zeros: {ref['zeros'] == zeros}")
    print(f"speed-up {ref['seconds'] / (best_thr + best_mask):.1f}x, memory ratio "
          f"{ref['extra_mb'] / (thr_extra + mask_mb):.1f}x (vs threshold extra + bool masks)")


if __name__ == "__main__":
    main()
