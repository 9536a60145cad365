"""The small wav2vec2 encoder that parp pretrains and embeds as its default model.

At this size the 7-layer CNN feature encoder, not the transformer, dominates CPU cost (it runs at 3,200 frames/s
in its first layer), so the convolutions are narrow while kernels and strides stay standard: frames remain 20 ms
at 16 kHz and every wav2vec2 tool (masking, CTC, pruning) sees the usual shapes.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2Model


def small_wav2vec2_config(**overrides) -> Wav2Vec2Config:
    """Config of the embedded default (5.46 M params, 21.8 MB fp32): 6 x 256-d layers over a 160-channel CNN.

    ``mask_time_prob`` here is the fine-tuning SpecAugment rate; pretraining objectives pass their own masks.
    ``overrides`` are any :class:`Wav2Vec2Config` fields (e.g. ``num_hidden_layers=2`` for tests).
    """
    conv_dim = overrides.pop("conv_channels", 160)
    settings = dict(
        conv_dim=(conv_dim,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        feat_extract_activation="gelu",
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=1024,
        hidden_act="gelu",
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
        hidden_dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.065,
        mask_time_length=10,
        mask_feature_prob=0.0,
        # Contrastive (Wav2Vec2ForPreTraining) settings, sized for a 256-d model; unused by BEST-RQ.
        num_codevector_groups=2,
        num_codevectors_per_group=320,
        codevector_dim=256,
        proj_codevector_dim=256,
        num_negatives=100,
        diversity_loss_weight=0.1,
        feat_quantizer_dropout=0.0,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        vocab_size=32,
    )
    settings.update(overrides)
    return Wav2Vec2Config(**settings)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def encoder_size_report(config: Wav2Vec2Config) -> str:
    """One line with the encoder's parameter count and fp32 size (what the checkpoint budget is about)."""
    encoder = Wav2Vec2Model(config)
    params = count_parameters(encoder)
    conv = count_parameters(encoder.feature_extractor)
    return f"encoder: {params / 1e6:.2f} M params ({conv / 1e6:.2f} M in the CNN), {params * 4 / 2**20:.1f} MiB fp32"


class SSLPretrainingModel(nn.Module):
    """A plain ``Wav2Vec2Model`` plus a linear head predicting BEST-RQ codeword ids for every frame.

    The encoder is stored as ``wav2vec2`` (the HF base-model prefix), so ``model.wav2vec2.save_pretrained``
    gives a standard folder that ``AutoModelForCTC`` loads with a fresh CTC head.
    """

    def __init__(self, encoder: Wav2Vec2Model, head: nn.Linear, num_codebooks: int = 1):
        super().__init__()
        self.wav2vec2 = encoder
        self.head = head
        self.num_codebooks = num_codebooks

    @property
    def config(self) -> Wav2Vec2Config:
        return self.wav2vec2.config

    def freeze_feature_encoder(self) -> None:
        self.wav2vec2.freeze_feature_encoder()

    def forward(self, input_values, attention_mask=None, mask_time_indices=None) -> torch.Tensor:
        """Logits of shape ``(batch, frames, num_codebooks, codebook_size)``."""
        hidden = self.wav2vec2(
            input_values, attention_mask=attention_mask, mask_time_indices=mask_time_indices
        ).last_hidden_state
        logits = self.head(hidden)
        return logits.view(*hidden.shape[:2], self.num_codebooks, -1)
