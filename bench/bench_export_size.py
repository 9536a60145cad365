"""Dense vs compressed checkpoint size for a wav2vec2-base-shaped model at 50/70/90 % sparsity.

    python bench/bench_export_size.py [--sparsities 0.5 0.7 0.9] [--try-zlib]

Random init (Wav2Vec2ForCTC(Wav2Vec2Config()), ~95 M params). Goals for the prunable tensors:
<= 0.55x / 0.35x / 0.15x. The whole file also holds the dense CNN feature encoder, positional conv,
layer norms and head, so its ratio is higher; both are printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import transformers  # noqa: E402

from parp.export import load_compressed, save_compressed  # noqa: E402
from parp.sparsity import magnitude_mask  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

GOALS = {0.5: 0.55, 0.7: 0.35, 0.9: 0.15}


def pruned_base(sparsity: float, folder: Path):
    """The wav2vec2-base shape with a global magnitude mask at ``sparsity`` baked in, and its dense safetensors file
    (the reference every sparse format is measured against)."""
    model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32))
    mask = magnitude_mask(model, sparsity)
    mask.apply_(model)
    dense = folder / "dense.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(dense))
    return model, mask, dense


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    ap.add_argument("--try-zlib", action="store_true", help="also measure byte-shuffle + zlib of the values")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for sparsity in args.sparsities:
            model, mask, dense = pruned_base(sparsity, tmp)
            start = time.perf_counter()
            comp = save_compressed(model, mask, tmp / "compressed.safetensors")
            t_save = time.perf_counter() - start
            start = time.perf_counter()
            load_compressed(comp, transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32)))
            t_load = time.perf_counter() - start
            d, c = dense.stat().st_size, comp.stat().st_size
            prunable_dense = 4 * mask.numel()
            prunable_comp = mask.numel() // 8 + 4 * (mask.numel() - mask.num_pruned())
            goal = GOALS.get(round(sparsity, 2))
            part = prunable_comp / prunable_dense
            verdict = "" if goal is None else (f" (goal <= {goal}: {'met' if part <= goal else 'MISSED'})")
            whole_verdict = "" if goal is None else (
                f" (goal {goal}: {'met' if c / d <= goal else 'missed: dense CNN/pos-conv/norms/head dominate'})")
            print(f"sparsity {sparsity:.0%}: dense {d / 2**20:.1f} MiB, compressed {c / 2**20:.1f} MiB, "
                  f"whole file {c / d:.3f}x{whole_verdict}; prunable tensors alone {part:.3f}x{verdict}; "
                  f"save {t_save:.2f} s, load {t_load:.2f} s")
            if args.try_zlib:
                kept = torch.cat([p.detach()[mask[n]] for n, p in model.named_parameters() if n in mask.masks])
                raw = kept.numpy().view(np.uint8)
                shuffled = raw.reshape(-1, 4).T.copy().tobytes()
                start = time.perf_counter()
                packed = zlib.compress(shuffled, 1)
                t_z = time.perf_counter() - start
                print(f"    byte-shuffle + zlib(1) of kept values: {len(packed) / len(raw):.3f}x of raw values "
                      f"in {t_z:.2f} s (random init; trained weights would differ)")


if __name__ == "__main__":
    main()
