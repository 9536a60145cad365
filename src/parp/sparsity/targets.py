"""Which parameters a pruning method may touch.

The default is the official PARP scope: the weights of the attention q/k/v/out projections and of both
feed-forward linears in every transformer encoder layer. The CNN feature encoder, the feature projection,
the positional convolution, layer norms and the CTC head (``lm_head``) stay dense. WavLM's extra attention
parameters (``gru_rel_pos_linear``, ``gru_rel_pos_const``, ``rel_attn_embed``) are excluded as well: they
are tiny gating / relative-position terms, not part of the projections PARP prunes.

Names are matched with regexes searched anywhere in the name, so wrappers (``module.`` from DDP) and
the four encoders (``wav2vec2.``, ``hubert.``, ``wavlm.``, ``data2vec_audio.``) all work.
"""

from __future__ import annotations

import re
from typing import Iterable

import torch
from torch import nn

from parp.errors import MaskError

ENCODER_LINEAR = re.compile(
    r"encoder\.layers\.\d+\.(attention\.(q_proj|k_proj|v_proj|out_proj)"
    r"|feed_forward\.(intermediate_dense|output_dense))$"
)
FEATURE_ENCODER = re.compile(r"feature_extractor\.conv_layers\.\d+\.conv\.weight$")
FEATURE_PROJECTION = re.compile(r"feature_projection\.projection\.weight$")
# wav2vec2/HuBERT/WavLM use weight-norm (original1 is the direction v: zeros there are zeros in w);
# data2vec-audio has plain convs.
POS_CONV = re.compile(r"pos_conv_embed\.(conv\.(weight|parametrizations\.weight\.original1|weight_v)"
                      r"|layers\.\d+\.conv\.weight)$")


def _compile(patterns: Iterable[str]) -> list[re.Pattern]:
    if isinstance(patterns, str):
        patterns = (patterns,)
    return [re.compile(p) for p in patterns]


def prunable_parameters(
    model: nn.Module,
    include_bias: bool = False,
    include_feature_encoder: bool = False,
    include_feature_projection: bool = False,
    include_pos_conv: bool = False,
    extra_patterns: Iterable[str] = (),
    exclude: Iterable[str] = (),
    include: Iterable[str] = (),
) -> dict[str, nn.Parameter]:
    """Parameters to prune, ordered as in ``model.named_parameters()``.

    ``extra_patterns`` (alias ``include``, the name used in ARCHITECTURE.md) adds any parameter whose name
    matches one of the regexes; ``exclude`` removes matches last. Raises :class:`MaskError` if nothing matches.
    """
    chosen: set[str] = set()
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear) and ENCODER_LINEAR.search(module_name):
            chosen.add(f"{module_name}.weight")
            if include_bias and module.bias is not None:
                chosen.add(f"{module_name}.bias")
    extras = _compile(extra_patterns) + _compile(include)
    excluded = _compile(exclude)
    result: dict[str, nn.Parameter] = {}
    for name, param in model.named_parameters():
        take = name in chosen
        take |= include_feature_encoder and bool(FEATURE_ENCODER.search(name))
        take |= include_feature_projection and bool(FEATURE_PROJECTION.search(name))
        take |= include_pos_conv and bool(POS_CONV.search(name))
        take |= any(p.search(name) for p in extras)
        if take and not any(p.search(name) for p in excluded):
            result[name] = param
    if not result:
        raise MaskError(
            f"no prunable parameters found in {type(model).__name__}: expected nn.Linear modules named "
            "encoder.layers.N.attention.{q,k,v,out}_proj / feed_forward.{intermediate,output}_dense"
        )
    return result


def resolve_parameters(model_or_params) -> dict[str, torch.Tensor]:
    """A module becomes its ``named_parameters()`` dict; a dict is used as is."""
    if isinstance(model_or_params, nn.Module):
        return dict(model_or_params.named_parameters())
    if isinstance(model_or_params, dict):
        return model_or_params
    raise MaskError(f"expected an nn.Module or a dict of tensors, got {type(model_or_params).__name__}")
