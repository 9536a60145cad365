"""2:4 semi-structured sparse kernels for the linears of a ``--scope 2:4`` model (CUDA, fp16/bf16 inference).

PyTorch's ``torch.sparse.to_sparse_semi_structured`` stores a weight with at most 2 non-zeros in every 4
consecutive inputs as values + metadata and runs ``F.linear`` through CUTLASS / cuSPARSELt sparse tensor
cores. They exist only on NVIDIA GPUs of compute capability 8.0+ (A100, H100, H200 ...) and only for half
precision here (fp16/bf16); everywhere else the dense masked model runs, after one line saying why.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.sparse import to_sparse_semi_structured

from parp.sparsity.mask import Mask

HALF = (torch.float16, torch.bfloat16)


def is_2_4(mask: Mask) -> bool:
    """True if every tensor of ``mask`` keeps at most 2 of every 4 consecutive weights along its input dim."""
    if not len(mask):
        return False
    for keep in mask.masks.values():
        if keep.dim() != 2 or keep.shape[-1] % 4:
            return False
        if bool((keep.reshape(-1, 4).sum(1) > 2).any()):
            return False
    return True


def semi_structured_unsupported(device: torch.device | str, dtype: torch.dtype) -> str | None:
    """Why the 2:4 kernels cannot run on ``device`` in ``dtype`` (None: they can)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return f"they need a CUDA GPU, the model is on {device.type}"
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return f"they need compute capability 8.0+, the GPU has {major}.{minor}"
    if dtype not in HALF:
        return f"they need float16 or bfloat16, the model is {str(dtype).replace('torch.', '')}"
    return None


def fallback_note(reason: str) -> str:
    return f"parp: note: 2:4 sparse kernels not used ({reason}); running the dense masked model"


@torch.no_grad()
def to_semi_structured_(model: nn.Module, mask: Mask) -> list[str]:
    """Swap the weight of every masked ``nn.Linear`` for its semi-structured sparse form, in place.

    The mask is applied first (the kernels require the 2:4 pattern). Returns the converted weight names; a
    linear whose shape the kernels refuse (e.g. too small) stays dense.
    """
    mask.apply_(model)
    modules = dict(model.named_modules())
    converted = []
    for name in mask:
        module = modules.get(name.rsplit(".", 1)[0])
        if not (isinstance(module, nn.Linear) and name.endswith(".weight")):
            continue
        try:
            sparse = to_sparse_semi_structured(module.weight.detach())
        except (RuntimeError, ValueError):  # shape / dtype constraints of the kernels
            continue
        module.weight = nn.Parameter(sparse, requires_grad=False)
        converted.append(name)
    return converted
