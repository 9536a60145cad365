"""Where and how decoding runs: ``--device`` (a GPU when there is one), bf16 autocast on it, length batches.

Batching pads utterances; that leaves each utterance's logits unchanged only when the feature encoder
normalises per frame (``feat_extract_norm="layer"``, e.g. XLS-R, wav2vec2-large-lv60, the embedded model).
Group-norm encoders (wav2vec2-base) normalise over the whole padded clip, so they decode one utterance per
batch and give the same transcripts batched or not.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..errors import ConfigError
from .decode import output_lengths

DEVICE_HELP = "auto (cuda when a GPU is visible, else cpu) | cpu | cuda | cuda:N."
PRECISION_HELP = "auto (bf16 on a GPU that supports it, else fp32) | fp32 | bf16."


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {choice!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {choice}: no CUDA GPU is visible to torch")
    return device


def resolve_precision(choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if choice not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"--precision must be auto, fp32 or bf16, got {choice!r}")
    if choice == "auto":
        gpu_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if gpu_bf16 else None
    return torch.bfloat16 if choice == "bf16" else None


def batch_seconds(model: torch.nn.Module, max_batch_seconds: float) -> float:
    """The batch budget, or a tiny one (one utterance per batch) when padding would change the logits."""
    norm = getattr(getattr(model, "config", None), "feat_extract_norm", "layer")
    return max_batch_seconds if norm == "layer" else 1e-9


def receptive_field_samples(model: torch.nn.Module) -> int:
    """Samples the CNN feature encoder needs for one output frame (400 for wav2vec 2.0): a shorter clip has no
    frame to decode, and the convolution would fail on it (0 when the model does not say)."""
    config = getattr(model, "config", None)
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels or not strides:
        return 0
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


@torch.no_grad()
def ctc_logits(model: torch.nn.Module, input_values: torch.Tensor, attention_mask: torch.Tensor | None,
               device: torch.device | None, dtype: torch.dtype | None) -> tuple[torch.Tensor, list[int]]:
    """fp32 logits on ``device`` (None: where the batch is) and the valid frames per utterance, for one padded
    batch; ``dtype`` is the autocast dtype (None: no autocast of its own, e.g. inside Accelerate's)."""
    device = device or input_values.device
    input_values = input_values.to(device, non_blocking=True)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext():
        logits = model(input_values=input_values, attention_mask=attention_mask).logits
    return logits.float(), output_lengths(model, attention_mask, logits.shape[1], logits.shape[0])
