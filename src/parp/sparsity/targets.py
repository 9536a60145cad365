"""Which parameters a pruning method may touch.

The default is the PARP scope: the weights of the attention projections and of the feed-forward linears in every
transformer (or conformer) encoder layer. They are found by module type and structure, not by one family's names
(:func:`layer_linears`), so every CTC family in transformers gets the same scope:

- an *encoder layer* is an element of an ``nn.ModuleList`` whose every element holds an attention module (a module
  whose class name contains ``Attention``) and at least one feed-forward pair;
- its *attention projections* are the ``nn.Linear`` modules inside its attention modules that read or write the
  layer's width (q, k, v, out; a conformer's relative-position projection ``linear_pos`` / ``relative_k_proj`` too;
  WavLM's small ``gru_rel_pos_linear`` gate, which does neither, stays dense);
- its *feed-forward linears* are the ``nn.Linear`` pairs outside attention: fc1 (width -> k) followed by fc2
  (k -> width); a conformer has two such blocks (``ffn1``/``ffn2``, ``feed_forward1``/``feed_forward2``), both in.

Everything else stays dense: the CNN feature encoder or filter-bank subsampling, the feature projection, the
positional convolution, layer norms, the CTC head, and a conformer's convolution module (pointwise and depthwise
``nn.Conv1d``: it is not a linear of the PARP scope; add it with ``include=[r"conv_module\\..*\\.weight$"]``).
The README's family table lists what this gives for every family.

Other models pick their targets with ``targets=``: a preset (``PRESETS``: the structural ``"encoder"`` /
``"decoder"`` / ``"layers"`` scopes, the BERT or Whisper-encoder regexes, or every ``nn.Linear`` but output heads), a
list of parameter-name regexes, or ``"auto"`` (the layer scope where it matches, else ``"linear"``) so the mask engine
works on any ``nn.Module``.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

import torch
from torch import nn

from parp.errors import MaskError

FEATURE_ENCODER = re.compile(r"feature_extractor\.conv_layers\.\d+\.conv\.weight$")
FEATURE_PROJECTION = re.compile(r"feature_projection(\.projection)?\.weight$")  # SEW / SEW-D: a bare Linear
# wav2vec2/HuBERT/WavLM use weight-norm (original1 is the direction v: zeros there are zeros in w);
# data2vec-audio has plain convs.
POS_CONV = re.compile(r"pos_conv_embed\.(conv\.(weight|parametrizations\.weight\.original1|weight_v)"
                      r"|layers\.\d+\.conv\.weight)$")


BERT_LINEAR = re.compile(r"encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                         r"|intermediate\.dense|output\.dense)$")
WHISPER_ENCODER_LINEAR = re.compile(r"(^|encoder\.)layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|fc1|fc2)$")
# output heads stay dense under "linear": they map to the task's labels, not the encoder's features
HEAD = re.compile(r"(^|\.)(lm_head|ctc_head|classifier|qa_outputs|proj_out|score|pooler|cls|project_q|project_hid)"
                  r"(\.|$)")
ANY = re.compile(r"")


def _is_attention(module: nn.Module) -> bool:
    return "attention" in type(module).__name__.lower()


def _outer_attention(layer: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost attention modules of ``layer`` (a relative-position helper inside one is part of it)."""
    found: list[tuple[str, nn.Module]] = []
    for name, module in layer.named_modules():
        if name and _is_attention(module) and not any(name.startswith(f"{outer}.") for outer, _ in found):
            found.append((name, module))
    return found


def _is_convolution_module(module: nn.Module) -> bool:
    return "conv" in type(module).__name__.lower()


def _ffn_pairs(layer: nn.Module, attention: list[str]) -> list[tuple[str, str]]:
    """(fc1, fc2) names of the feed-forward pairs of ``layer``: consecutive linears outside attention and outside a
    convolution module (Granite's conv module uses linear pointwise layers), width -> k -> width."""
    convolution = [n for n, m in layer.named_modules() if n and _is_convolution_module(m)]
    linears = [(n, m) for n, m in layer.named_modules()
               if isinstance(m, nn.Linear) and not any(n.startswith(f"{a}.") for a in attention + convolution)]
    pairs, i = [], 0
    while i + 1 < len(linears):
        (n1, fc1), (n2, fc2) = linears[i], linears[i + 1]
        if fc1.out_features == fc2.in_features and fc1.in_features == fc2.out_features:
            pairs.append((n1, n2))
            i += 2
        else:
            i += 1
    return pairs


def layer_stacks(model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """Every ``nn.ModuleList`` of transformer / conformer layers in ``model`` (each element: attention + FFN)."""
    stacks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and all(
                (att := _outer_attention(layer)) and _ffn_pairs(layer, [a for a, _ in att]) for layer in module):
            stacks.append((name, module))
    return stacks


def layer_linears(model: nn.Module, part: str = "layers") -> dict[str, list[tuple[str, nn.Linear]]]:
    """``{"attention": [...], "ffn": [...]}``: the (name, Linear) pairs of every layer, in model order.

    ``part``: ``"layers"`` every layer stack; ``"encoder"`` / ``"decoder"`` those inside ``model.get_encoder()`` /
    ``get_decoder()`` of an encoder-decoder model (a CTC model has only an encoder: ``"encoder"`` is all of it).
    """
    roots = _part_roots(model, part)
    found = {"attention": [], "ffn": []}
    for stack_name, stack in layer_stacks(model):
        if roots is not None and not any(any(m is stack for m in root.modules()) for root in roots):
            continue
        for index, layer in enumerate(stack):
            prefix = f"{stack_name}.{index}." if stack_name else f"{index}."
            attention = _outer_attention(layer)
            pairs = _ffn_pairs(layer, [a for a, _ in attention])
            width = layer.get_submodule(pairs[0][0]).in_features
            modules = dict(layer.named_modules())
            for name, module in layer.named_modules():
                if (isinstance(module, nn.Linear) and any(name.startswith(f"{a}.") for a, _ in attention)
                        and width in (module.in_features, module.out_features)):
                    found["attention"].append((prefix + name, module))
            for fc1, fc2 in pairs:
                found["ffn"] += [(prefix + fc1, modules[fc1]), (prefix + fc2, modules[fc2])]
    return found


def _part_roots(model: nn.Module, part: str) -> list[nn.Module] | None:
    if part == "layers":
        return None
    encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
    if not encoder_decoder:
        return None if part == "encoder" else []
    getter = getattr(model, f"get_{part}", None)
    return [getter()] if getter is not None else []


def _structural(part: str) -> Callable[[nn.Module], list[tuple[str, nn.Linear]]]:
    def modules(model: nn.Module) -> list[tuple[str, nn.Linear]]:
        found = layer_linears(model, part)
        chosen = {id(m) for _, m in found["attention"] + found["ffn"]}
        return [(n, m) for n, m in model.named_modules() if id(m) in chosen]  # model order
    return modules


def _regex(pattern: re.Pattern, skip_heads: bool = False) -> Callable[[nn.Module], list[tuple[str, nn.Linear]]]:
    def modules(model: nn.Module) -> list[tuple[str, nn.Linear]]:
        return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and pattern.search(n)
                and not (skip_heads and HEAD.search(n))]
    return modules


PRESETS: dict[str, Callable[[nn.Module], list[tuple[str, nn.Linear]]]] = {
    "encoder": _structural("encoder"),  # the PARP paper's scope, for every CTC family (see the module docstring)
    "wav2vec2": _structural("encoder"),  # the old name of "encoder": the same parameters in wav2vec2-style models
    "decoder": _structural("decoder"),  # an encoder-decoder model's decoder layers (Whisper): self- and cross-attention
    "layers": _structural("layers"),  # both
    "bert": _regex(BERT_LINEAR),
    "whisper-encoder": _regex(WHISPER_ENCODER_LINEAR),
    "linear": _regex(ANY, skip_heads=True),  # every nn.Linear weight except output heads
}


def resolve_targets(model: nn.Module, targets) -> tuple[list[tuple[str, nn.Linear]], list[re.Pattern], str]:
    """``targets`` -> (Linear modules from a preset, parameter-name regexes, the preset actually used)."""
    if targets is None:
        targets = "encoder"
    if isinstance(targets, str) and targets == "auto":
        modules = PRESETS["encoder"](model)
        return (modules, [], "encoder") if modules else (PRESETS["linear"](model), [], "linear")
    if isinstance(targets, str) and targets in PRESETS:
        return PRESETS[targets](model), [], targets
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

    ``targets`` picks the base set: a ``PRESETS`` name (default ``"encoder"``), ``"auto"``, or parameter-name
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
        if preset in ("encoder", "wav2vec2", "decoder", "layers"):
            raise MaskError(
                f"no prunable parameters found in {type(model).__name__}: expected an nn.ModuleList of layers, each "
                "with an attention module and a feed-forward pair of nn.Linear; "
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
