"""Sparse checkpoint formats side by side: dense safetensors, parp's compressed file, compressed-tensors'
``sparse-bitmask`` (the standard the Hub knows from llm-compressor), and whether the latter loads without parp.

    PYTHONPATH=src:/path/to/compressed-tensors-0.13 python bench/bench_sparse_formats.py [--sparsities 0.5 0.7 0.9]

compressed-tensors dropped its sparse-bitmask compressor after 0.13 ("legacy sparse compressors", 0.14+), so the
writer is taken from 0.13 (pure torch; install it with ``pip install --no-deps --target DIR
compressed-tensors==0.13.0``). Random init Wav2Vec2ForCTC(Wav2Vec2Config()) (~95 M params), PARP's scope pruned.

Measured (2-core CPU, busy; transformers 5.24, compressed-tensors 0.13.0 as writer):

| sparsity | dense MiB | parp compressed MiB (ratio) | ct sparse-bitmask MiB (ratio) |
|---|---|---|---|
| 50% | 360.1 | 208.3 (0.578x) | 208.9 (0.580x) |
| 70% | 360.1 | 143.5 (0.398x) | 144.1 (0.400x) |
| 90% | 360.1 | 78.7 (0.218x) | 79.3 (0.220x) |

Loading a sparse-bitmask folder with plain transformers 5.24: with compressed-tensors 0.13 it refuses
("compressed-tensors>=0.15.0 is required"); with 0.20 it loads, but the 12 compressed weight matrices of a
2-layer model come back re-initialised (unexpected keys). So the standard format is not adopted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from bench_export_size import pruned_base  # noqa: E402  (bench/ is on sys.path when run as a script)
from parp.export import load_compressed, save_compressed  # noqa: E402


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def bitmask_file(model, mask, path: Path) -> tuple[int, float, bool]:
    """compressed-tensors 0.13 BitmaskCompressor over the masked tensors; (bytes, seconds, round trip exact)."""
    from compressed_tensors.compressors.sparse_compressors.sparse_bitmask import BitmaskCompressor
    from compressed_tensors.config import BitmaskConfig

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    start = time.perf_counter()
    compressor = BitmaskCompressor(config=BitmaskConfig())
    targets = {n[: -len(".weight")] for n in mask.masks}  # it takes layer prefixes
    compressed = compressor.compress(state, compression_targets=targets, show_progress=False)
    save_file({k: v.contiguous() for k, v in compressed.items()}, str(path))
    seconds = time.perf_counter() - start
    from compressed_tensors.compressors.sparse_compressors.sparse_bitmask import BitmaskTensor

    loaded = load_file(str(path))
    exact = True
    for prefix in targets:
        keys = {k.rsplit(".", 1)[-1]: loaded[k] for k in loaded if k.rsplit(".", 1)[0] == prefix}
        dense = BitmaskTensor(shape=keys["shape"].tolist(), compressed=keys["compressed"], bitmask=keys["bitmask"],
                              row_offsets=keys["row_offsets"]).decompress()
        exact &= torch.equal(dense, state[prefix + ".weight"])
    return path.stat().st_size, seconds, exact


def loads_in_plain_transformers(model, mask, folder: Path) -> str:
    """Save a folder whose config names compressed-tensors' sparse-bitmask and try AutoModelForCTC on it."""
    model.save_pretrained(folder)
    bitmask_file(model, mask, folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "compressed-tensors", "format": "sparse-bitmask",
                                     "sparsity_config": {"format": "sparse-bitmask", "global_sparsity": 0.5,
                                                         "targets": ["Linear"], "ignore": ["lm_head"]}}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        transformers.AutoModelForCTC.from_pretrained(folder)
        return "loads"
    except Exception as exc:  # noqa: BLE001  (what goes wrong is the finding)
        return f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    args = ap.parse_args()
    torch.manual_seed(0)
    print("| sparsity | dense MiB | parp compressed MiB (ratio) | ct sparse-bitmask MiB (ratio) | ct write s | "
          "parp write+load s | bitmask round trip |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for sparsity in args.sparsities:
            model, mask, dense = pruned_base(sparsity, tmp)
            start = time.perf_counter()
            comp = save_compressed(model, mask, tmp / "parp.safetensors")
            load_compressed(comp, transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32)))
            t_parp = time.perf_counter() - start
            ct_bytes, t_ct, exact = bitmask_file(model, mask, tmp / "ct.safetensors")
            d, c = dense.stat().st_size, comp.stat().st_size
            print(f"| {sparsity:.0%} | {_mib(d)} | {_mib(c)} ({c / d:.3f}x) | {_mib(ct_bytes)} ({ct_bytes / d:.3f}x) "
                  f"| {t_ct:.1f} | {t_parp:.1f} | {'exact' if exact else 'DIFFERS'} |", flush=True)
        print("\nplain transformers", transformers.__version__, "on a sparse-bitmask folder:",
              loads_in_plain_transformers(model, mask, tmp / "folder"))


if __name__ == "__main__":
    main()
