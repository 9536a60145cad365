"""The one CTC prediction path: padded batches -> logits -> decoded text -> error rates.

Validation inside the training loop (``parp.training.ctc.CTCObjective``), ``parp evaluate`` and
``parp transcribe`` all go through ``predict`` and ``score``, so a validation CER and an evaluated CER are
computed the same way.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import torch

from ..data.text import Vocabulary
from .decode import greedy_decode
from .inference import ctc_logits
from .metrics import METRICS, error_rates

Decoder = Callable[[torch.Tensor, Sequence[int]], list[str]]


def predict(model: torch.nn.Module, batches: Iterable[dict], vocabulary: Vocabulary, *,
            decoder: Decoder | None = None, reference: Callable[[int], str] | None = None,
            device: torch.device | None = None, dtype: torch.dtype | None = None,
            failed: list | None = None) -> list[dict[str, Any]]:
    """``{index, reference, hypothesis}`` per utterance of ``batches`` (``parp.data.batching.CTCCollator``'s).

    ``decoder`` defaults to greedy decoding; ``reference(index)`` gives an utterance's reference text (default:
    its labels decoded); ``device``/``dtype`` as in ``parp.evaluation.inference.ctc_logits`` (None: where the
    batch already is, no autocast). Files that failed to decode are skipped and appended to ``failed``.
    """
    decode = decoder or (lambda logits, lengths: greedy_decode(logits, lengths, vocabulary))
    rows: list[dict[str, Any]] = []
    model.eval()
    with torch.no_grad():
        for batch in batches:
            if failed is not None:
                failed += batch.get("failed", [])
            if "input_values" not in batch:
                continue  # every file of the batch failed to decode
            logits, lengths = ctc_logits(model, batch["input_values"], batch.get("attention_mask"), device, dtype)
            hypotheses = decode(logits, lengths)
            indices = batch["index"].tolist() if "index" in batch else [None] * len(hypotheses)
            if reference is not None:
                references = [reference(i) for i in indices]
            else:
                references = [vocabulary.decode_labels(row) for row in batch["labels"].tolist()]
            rows += [{"index": i, "reference": r, "hypothesis": h} for i, r, h in zip(indices, references, hypotheses)]
    return rows


def score(rows: Sequence[dict[str, Any]], unit: str, per_utterance: bool = False) -> dict[str, float]:
    """Corpus error rates of ``unit``'s metrics (``cer``, ``wer`` | ``per``); with ``per_utterance`` each row
    also gets its own value of the unit's first metric (blank where its reference is empty)."""
    rates = error_rates([r["reference"] for r in rows], [r["hypothesis"] for r in rows], unit)
    if per_utterance:
        name = METRICS[unit][0]
        for row in rows:
            one = error_rates([row["reference"]], [row["hypothesis"]], unit)[name]
            row[name] = round(one, 4) if math.isfinite(one) else ""
    return {name: rates[name] for name in METRICS[unit]}
