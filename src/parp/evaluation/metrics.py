"""WER and CER, or PER for phone targets, from jiwer (not hand code), robust to empty references."""

from __future__ import annotations

from typing import Sequence

import jiwer

#: The error metrics of each token unit; the first is the one a best model is chosen by.
METRICS = {"char": ("cer", "wer"), "phone": ("per",)}


def error_rates(references: Sequence[str], hypotheses: Sequence[str], unit: str = "char") -> dict[str, float]:
    """Corpus-level error rates (fractions, not percent): word and character for ``unit="char"``; phone (PER,
    the edit distance over space-separated phones, i.e. jiwer's WER with phones as words) for ``unit="phone"``.

    Utterances whose reference is empty cannot be scored by jiwer; they are left out and counted.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if unit == "phone":
        if not pairs:
            return {"per": float("nan"), "scored": 0}
        refs, hyps = zip(*pairs)
        return {"per": float(jiwer.wer(list(refs), list(hyps))), "scored": len(pairs)}
    if not pairs:
        return {"wer": float("nan"), "cer": float("nan"), "scored": 0}
    refs, hyps = zip(*pairs)
    return {"wer": float(jiwer.wer(list(refs), list(hyps))), "cer": float(jiwer.cer(list(refs), list(hyps))),
            "scored": len(pairs)}
