"""Compressed sparse checkpoint: one safetensors file, masked tensors as packed bitmask + kept values.

Layout: for every masked parameter ``name``: ``name::bits`` (uint8, np.packbits of the keep-mask) and
``name::values`` (the kept values, original dtype, row-major order); every other state_dict tensor is
stored dense under its own name. Masked positions come back as +0.0, so the round trip of a model whose
mask was applied is bit-exact. Byte-shuffle + zlib(1) of the kept values was measured
(bench/bench_export_size.py --try-zlib, random-init wav2vec2-base): 0.77-0.83x of the raw values for
1-9 s extra on a 2-core CPU; left out to keep the format plain safetensors and loading fast.

Why not the standard compressed-tensors ``sparse-bitmask`` (bench/bench_sparse_formats.py, wav2vec2-base shape,
2-core CPU): it is the same idea and the same size (208.9 / 144.1 / 79.3 MiB vs 208.3 / 143.5 / 78.7 MiB here at
50 / 70 / 90 %), but it loads nowhere without parp today: compressed-tensors dropped the sparse-bitmask
compressor after 0.13, transformers 5.x needs compressed-tensors >= 0.15, and with 0.20 such a folder "loads"
with every compressed weight matrix silently re-initialised. The folder that loads without parp is the dense HF
export (zeros baked in); this file is the small one, loaded with :func:`load_compressed`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from parp.errors import MaskError
from parp.sparsity.mask import Mask, pack_bits, unpack_bits

FORMAT = "parp-compressed-v1"


def save_compressed(model: nn.Module, mask: Mask, path) -> Path:
    """Write the pruned model (``mask`` applied: masked weights are dropped) as one small file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    mask.check_compatible(state)
    tensors, shapes = {}, {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if name in mask.masks:
            keep = mask.masks[name].cpu()
            tensors[f"{name}::bits"] = torch.from_numpy(pack_bits(keep))
            tensors[f"{name}::values"] = tensor[keep].contiguous()
            shapes[name] = list(tensor.shape)
        else:
            tensors[name] = tensor.contiguous().clone()  # clone: safetensors refuses shared storage
    header = {"format": FORMAT, "masked_shapes": json.dumps(shapes), "order": json.dumps(list(state))}
    save_file(tensors, str(path), metadata=header)
    return path


def _read(path):
    path = Path(path)
    if not path.is_file():
        raise MaskError(f"compressed checkpoint {str(path)!r} does not exist")
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        if header.get("format") != FORMAT:
            raise MaskError(f"{str(path)!r} is not a parp compressed checkpoint")
        raw = {k: f.get_tensor(k) for k in f.keys()}
    return header, raw


def compressed_mask(path) -> Mask:
    """The keep-mask stored in a compressed checkpoint."""
    header, raw = _read(path)
    shapes = json.loads(header["masked_shapes"])
    return Mask({n: unpack_bits(raw[f"{n}::bits"].numpy(), s) for n, s in shapes.items()}, source=path)


def load_compressed(path, model: nn.Module) -> nn.Module:
    """Fill ``model`` (same architecture) from a compressed checkpoint, in place; returns the model."""
    header, raw = _read(path)
    shapes = json.loads(header["masked_shapes"])
    state = {}
    for name in json.loads(header["order"]):
        if name in shapes:
            keep = unpack_bits(raw[f"{name}::bits"].numpy(), shapes[name])
            values = raw[f"{name}::values"]
            dense = torch.zeros(shapes[name], dtype=values.dtype)
            dense[keep] = values
            state[name] = dense
        else:
            state[name] = raw[name]
    expected = model.state_dict()
    for name, tensor in state.items():
        if name not in expected or tuple(expected[name].shape) != tuple(tensor.shape):
            got = tuple(expected[name].shape) if name in expected else "missing"
            raise MaskError(f"compressed checkpoint {str(path)!r} does not fit the model: {name!r} "
                            f"has shape {tuple(tensor.shape)} in the file, model: {got}")
    model.load_state_dict(state, strict=True)
    return model


def _size(path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.glob("*.safetensors") if p.name != "mask.safetensors")
    return path.stat().st_size


def compression_report(dense_path, compressed_path) -> dict:
    """Print and return dense vs compressed sizes (a folder counts its model *.safetensors files)."""
    dense, comp = _size(dense_path), _size(compressed_path)
    report = {"dense_bytes": dense, "compressed_bytes": comp, "ratio": comp / dense if dense else float("nan")}
    print(f"dense {dense / 2**20:.2f} MiB  compressed {comp / 2**20:.2f} MiB  ratio {report['ratio']:.3f}x")
    return report
