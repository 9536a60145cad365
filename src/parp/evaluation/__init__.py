"""Evaluation: CTC decoding, WER/CER (jiwer), per-utterance results, transcription."""

from .decode import BeamSearchDecoder, greedy_decode
from .metrics import error_rates

__all__ = ["BeamSearchDecoder", "error_rates", "greedy_decode"]
