"""Opt-in GPU speed options (``--torch-compile``, ``--gradient-checkpointing``, ``--tf32``).

All off by default: none has been measured on a GPU in this project yet (``bench/gpu_check.sh`` prints the
figures to decide with); each becomes a default only once it is measured to pay.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def apply_speed_options(model: torch.nn.Module, config) -> str:
    """Set TF32 matmuls and gradient checkpointing as asked; return Accelerate's dynamo backend ("no" or "inductor")."""
    if config.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (10-bit mantissa inputs)
        torch.backends.cudnn.allow_tf32 = True
    if config.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ConfigError(f"--gradient-checkpointing: {type(model).__name__} does not support it")
        # recompute activations in the backward pass: less memory for long clips / large encoders
        enable = getattr(model, "activation_checkpointing_enable", None)  # newer transformers; the old name warns
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return "inductor" if config.torch_compile else "no"
