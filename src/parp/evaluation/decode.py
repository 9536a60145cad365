"""CTC decoding: greedy (default, no extra dependencies) and beam search with an optional KenLM model.

Beam search uses pyctcdecode (``pip install parp[lm]``); it is imported only when asked for.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data.text import PAD_TOKEN, UNK_TOKEN, WORD_DELIMITER, Vocabulary
from ..errors import ConfigError


def output_lengths(model: torch.nn.Module, attention_mask: torch.Tensor | None, n_frames: int,
                   batch_size: int) -> list[int]:
    """Valid logit frames per utterance (padding frames are not decoded)."""
    if attention_mask is None:
        return [n_frames] * batch_size
    base = getattr(model, "module", model)
    lengths = base._get_feat_extract_output_lengths(attention_mask.sum(-1))
    return lengths.clamp(max=n_frames).tolist()  # one read-back per batch


def greedy_decode(logits: torch.Tensor, lengths: Sequence[int], vocabulary: Vocabulary) -> list[str]:
    ids = logits.argmax(-1).cpu().numpy()
    return [vocabulary.decode_ids(row[:n]) for row, n in zip(ids, lengths)]


class BeamSearchDecoder:
    """pyctcdecode beam search over log-probabilities, optionally with a KenLM n-gram model."""

    def __init__(self, vocabulary: Vocabulary, beam_width: int = 32, kenlm_model: str | None = None,
                 alpha: float = 0.5, beta: float = 1.0):
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError as exc:
            raise ConfigError("--beam-width > 1 needs pyctcdecode: pip install 'parp[lm]'") from exc
        labels = []
        for token in vocabulary.tokens:
            if token == PAD_TOKEN:
                labels.append("")  # the CTC blank
            elif token == WORD_DELIMITER:
                labels.append(" ")
            elif token == UNK_TOKEN:
                labels.append("⁇")
            else:
                labels.append(token)
        self.beam_width = beam_width
        self.decoder = build_ctcdecoder(labels, kenlm_model_path=kenlm_model, alpha=alpha, beta=beta)

    def __call__(self, logits: torch.Tensor, lengths: Sequence[int]) -> list[str]:
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return [" ".join(self.decoder.decode(np.ascontiguousarray(lp[:n]), beam_width=self.beam_width).split())
                for lp, n in zip(log_probs, lengths)]
