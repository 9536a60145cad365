"""WER and CER from jiwer (not hand code), robust to empty references."""

from __future__ import annotations

from typing import Sequence

import jiwer


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus-level word and character error rates (fractions, not percent).

    Utterances whose reference is empty cannot be scored by jiwer; they are left out and counted.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if not pairs:
        return {"wer": float("nan"), "cer": float("nan"), "scored": 0}
    refs, hyps = zip(*pairs)
    return {"wer": float(jiwer.wer(list(refs), list(hyps))), "cer": float(jiwer.cer(list(refs), list(hyps))),
            "scored": len(pairs)}
