"""Which parameters a pruning method may touch.

The default is the official PARP scope: the weights of the attention q/k/v/out projections and of both
feed-forward linears in every transformer encoder layer. The CNN feature encoder, the feature projection,
the positional convolution, layer norms and the CTC head (``lm_head``) stay dense. WavLM's extra attention
parameters (``gru_rel_pos_linear``, ``gru_rel_pos_const``, ``rel_attn_embed``) are excluded as well: they
are tiny gating / relative-position terms, not part of the projections PARP prunes.

Names are matched with regexes searched anywhere in the name, so wrappers (``module.`` from DDP) and
the four encoders (``wav2vec2.``, ``hubert.``, ``wavlm.``, ``data2vec_audio.``) all work.

Other models pick their targets with ``targets=``: a preset (``PRESETS``: the same projections in BERT or
Whisper's encoder, or every ``nn.Linear`` but output heads), a list of parameter-name regexes, or ``"auto"``
(the speech-encoder scope where it matches, else ``"linear"``) so the mask engine works on any ``nn.Module``.
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


BERT_LINEAR = re.compile(r"encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                         r"|intermediate\.dense|output\.dense)$")
WHISPER_ENCODER_LINEAR = re.compile(r"(^|encoder\.)layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|fc1|fc2)$")
# output heads stay dense under "linear": they map to the task's labels, not the encoder's features
HEAD = re.compile(r"(^|\.)(lm_head|classifier|qa_outputs|proj_out|score|pooler|cls|project_q|project_hid)(\.|$)")
ANY = re.compile(r"")
PRESETS: dict[str, re.Pattern] = {
    "wav2vec2": ENCODER_LINEAR,  # also HuBERT, WavLM, data2vec-audio: the PARP paper's scope
    "bert": BERT_LINEAR,
    "whisper-encoder": WHISPER_ENCODER_LINEAR,
    "linear": ANY,  # every nn.Linear weight except output heads
}


def _preset_modules(model: nn.Module, preset: str) -> list[tuple[str, nn.Linear]]:
    pattern = PRESETS[preset]
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and pattern.search(name) and not (preset == "linear" and HEAD.search(name))]


def resolve_targets(model: nn.Module, targets) -> tuple[list[tuple[str, nn.Linear]], list[re.Pattern], str]:
    """``targets`` -> (Linear modules from a preset, parameter-name regexes, the preset actually used)."""
    if targets is None:
        targets = "wav2vec2"
    if isinstance(targets, str) and targets == "auto":
        modules = _preset_modules(model, "wav2vec2")
        return (modules, [], "wav2vec2") if modules else (_preset_modules(model, "linear"), [], "linear")
    if isinstance(targets, str) and targets in PRESETS:
        return _preset_modules(model, targets), [], targets
    if isinstance(targets, str):  # regexes come as a list, so a typo'd preset is not taken for a pattern
        raise MaskError(f"unknown targets preset {targets!r}: use one of {', '.join(PRESETS)}, 'auto', "
                        "or a list of parameter-name regexes")
    try:
        return [], _compile(targets), "regex"
    except re.error as exc:
        raise MaskError(f"targets: bad regex ({exc})") from None


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
    targets: str | Iterable[str] | None = None,
) -> dict[str, nn.Parameter]:
    """Parameters to prune, ordered as in ``model.named_parameters()``.

    ``targets`` picks the base set: a ``PRESETS`` name (default ``"wav2vec2"``), ``"auto"``, or parameter-name
    regexes. ``extra_patterns`` (alias ``include``, the name used in ARCHITECTURE.md) adds any parameter whose
    name matches one of the regexes; ``exclude`` removes matches last. Raises :class:`MaskError` if nothing matches.
    """
    modules, target_patterns, preset = resolve_targets(model, targets)
    chosen: set[str] = set()
    for module_name, module in modules:
        chosen.add(f"{module_name}.weight")
        if include_bias and module.bias is not None:
            chosen.add(f"{module_name}.bias")
    extras = _compile(extra_patterns) + _compile(include) + target_patterns
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
        if preset == "wav2vec2":
            raise MaskError(
                f"no prunable parameters found in {type(model).__name__}: expected nn.Linear modules named "
                "encoder.layers.N.attention.{q,k,v,out}_proj / feed_forward.{intermediate,output}_dense; "
                f"for other models pass targets= one of {', '.join(PRESETS)}, 'auto' or parameter-name regexes"
            )
        raise MaskError(f"no prunable parameters found in {type(model).__name__} with targets={targets!r}")
    return result


def resolve_parameters(model_or_params) -> dict[str, torch.Tensor]:
    """A module becomes its ``named_parameters()`` dict; a dict is used as is."""
    if isinstance(model_or_params, nn.Module):
        return dict(model_or_params.named_parameters())
    if isinstance(model_or_params, dict):
        return model_or_params
    raise MaskError(f"expected an nn.Module or a dict of tensors, got {type(model_or_params).__name__}")
