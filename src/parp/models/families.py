"""Every CTC family transformers registers for ``AutoModelForCTC``: which ones parp's own data path and CTC loop
run, why the others are refused there, and a tiny random config of each (built offline, for tests).

parp's data path feeds raw 16 kHz waveforms (``input_values``) and its CTC loop reads the wav2vec2-style interface
(``lm_head``, ``_get_feat_extract_output_lengths``). Families with another interface are refused up front by
``parp finetune / prune / evaluate / transcribe`` with one line; the mask engine (``parp.sparsity``) and
``parp.integrations.transformers.PruningCallback`` work on all of them, in a training script that brings the
model's own feature extractor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import transformers
from transformers import AutoModelForCTC, PretrainedConfig, PreTrainedModel

from ..errors import ModelError

_FILTERBANK = ("takes filter-bank input_features, but parp's data path feeds raw waveforms (input_values); "
               "use parp.integrations.transformers.PruningCallback in a transformers Trainer script with the "
               "model's own feature extractor")


@dataclass(frozen=True)
class Family:
    """One ``model_type`` of ``MODEL_FOR_CTC_MAPPING_NAMES``; ``refused`` says why the CLI does not run it."""

    model_type: str
    main_input: str
    refused: str | None = None
    tiny: dict = field(default_factory=dict)


_W2V = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, mask_time_prob=0.0, layerdrop=0.0,
            hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
            final_dropout=0.0)
_CONFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                  intermediate_size=64, subsampling_conv_channels=8, num_mel_bins=16, conv_kernel_size=3)

FAMILIES: dict[str, Family] = {f.model_type: f for f in (
    Family("wav2vec2", "input_values", tiny=_W2V),
    Family("hubert", "input_values", tiny=_W2V),
    Family("wavlm", "input_values", tiny=dict(_W2V, num_buckets=32, max_bucket_distance=100)),
    Family("data2vec-audio", "input_values", tiny=dict(_W2V, num_conv_pos_embeddings=5)),
    Family("unispeech", "input_values", tiny=_W2V),
    Family("unispeech-sat", "input_values", tiny=_W2V),
    Family("sew", "input_values", tiny=dict(_W2V, squeeze_factor=2)),
    Family("sew-d", "input_values", tiny=dict(_W2V, squeeze_factor=2, max_position_embeddings=64,
                                              position_buckets=32)),
    Family("wav2vec2-conformer", "input_values", tiny=dict(_W2V, conv_depthwise_kernel_size=3)),
    Family("wav2vec2-bert", "input_features", _FILTERBANK,
           tiny=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     feature_projection_input_dim=160, conv_depthwise_kernel_size=3, mask_time_prob=0.0,
                     layerdrop=0.0)),
    Family("parakeet_ctc", "input_features", _FILTERBANK, tiny=dict(encoder_config=_CONFORMER)),
    Family("lasr_ctc", "input_features", _FILTERBANK, tiny=dict(encoder_config=_CONFORMER)),
    Family("granite_speech5_ctc", "input_features", _FILTERBANK,
           tiny=dict(encoder_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                         num_key_value_heads=2, intermediate_size=64, head_dim=16, num_mel_bins=16,
                                         conv_kernel_size=3))),
    Family("omniasr_ctc", "input_values",
           "takes waveforms shaped (batch, 1, samples) with a padding_mask and has a ctc_head and no "
           "_get_feat_extract_output_lengths: not the wav2vec2-style interface parp's CTC loop and decoder read; "
           "use parp.integrations.transformers.PruningCallback in a transformers Trainer script",
           tiny=dict(audio_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, conv_dim=(16, 16, 16), conv_stride=(5, 4, 4),
                                       conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
                                       num_conv_pos_embedding_groups=4, layerdrop=0.0, hidden_dropout=0.0,
                                       activation_dropout=0.0))),
)}

#: the families ``parp finetune / prune / evaluate / transcribe`` run
ARCHITECTURES = tuple(name for name, family in FAMILIES.items() if family.refused is None)


def check_cli_family(config: PretrainedConfig, source: str) -> None:
    """Refuse, in one line naming the family, a model parp's own data path and CTC loop cannot run."""
    model_type = getattr(config, "model_type", None)
    family = FAMILIES.get(model_type)
    if family is None:
        raise ModelError(f"{source}: model family {model_type!r} is not a CTC speech family parp knows "
                         f"(known: {', '.join(FAMILIES)})")
    if family.refused:
        raise ModelError(f"{source}: model family {model_type!r} {family.refused}")


def tiny_config(arch: str = "wav2vec2", vocab_size: int = 32, **overrides) -> PretrainedConfig:
    """A very small random-weight config of any CTC family (no network), for tests and smoke runs."""
    if arch not in FAMILIES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(FAMILIES)}")
    kwargs = dict(FAMILIES[arch].tiny, vocab_size=vocab_size, pad_token_id=0, ctc_loss_reduction="mean",
                  ctc_zero_infinity=True)
    sub = next((key for key in ("encoder_config", "audio_config") if key in kwargs), None)
    if sub is not None:  # composite configs: the encoder's own options go to the sub-config
        inner = dict(kwargs[sub], **{k: overrides.pop(k) for k in list(overrides) if k in _inner_keys(arch, sub)})
        if arch == "granite_speech5_ctc":
            inner["vocab_size"] = vocab_size  # its config checks encoder and CTC vocabularies agree
        kwargs[sub] = inner
    kwargs.update(overrides)
    config_class = transformers.models.auto.configuration_auto.CONFIG_MAPPING[arch]
    return config_class(**kwargs)


def _inner_keys(arch: str, sub: str) -> set[str]:
    return set(FAMILIES[arch].tiny[sub]) | {"intermediate_size", "hidden_size", "num_hidden_layers"}


def tiny_ctc_model(arch: str = "wav2vec2", vocab_size: int = 32, seed: int = 0, **overrides) -> PreTrainedModel:
    import torch

    torch.manual_seed(seed)
    return AutoModelForCTC.from_config(tiny_config(arch, vocab_size, **overrides))
