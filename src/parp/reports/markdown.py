"""The one place where a report's numbers and verdicts become Markdown: cell formatting and the sentences that state
each claim's verdict (:class:`parp.reports.verdicts.ClaimVerdict`) with the figures it rests on."""

from __future__ import annotations

from .stats import Difference, mean, std
from .tables import WER_SATURATED
from .verdicts import ClaimVerdict, Comparison, Verdict

CLAIM_TITLES = {
    "a": "(a) PARP ≈ OMP at half the fine-tuning cost.",
    "b": "(b) A sparsity range where PARP beats the unpruned model.",
    "c": "(c) Similar pruned subnetworks across languages.",
    "d": "(d) A mask found on one language transfers to another with no loss.",
    "e": "(e) One multilingual subnetwork from one run serves every language.",
}

NOT_MEASURED = {
    "a": "Not measured (the sweep needs both PARP and OMP at the same sparsity).",
    "b": "Not measured (the sweep needs PARP cells and the unpruned cell of the same language).",
    "c": "Not measured (needs masks of the same method and sparsity in at least two languages).",
    "d": "Not measured (the sweep needs transfer: true, with PARP and OMP cells of every language it transfers "
         "between).",
}

_VERDICT_TEXT = {Verdict.HOLDS: "Holds here", Verdict.HOLDS_PARTLY: "Holds partly",
                 Verdict.HOLDS_FOR_SOME: "Holds for some languages", Verdict.FAILS: "Does not hold here"}


def fmt(value, digits: int = 3) -> str:
    """A table cell: ``–`` for a missing value, floats to ``digits`` places."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_spread(values: list[float]) -> str:
    """Mean, and ± the standard deviation across seeds where there are several."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return fmt(mean(values)) + (f" ± {std(values):.3f}" if len(values) > 1 else "")


def seed_caption(counts: set[int]) -> str:
    """How many seeds a figure's points average, and where its error bars come from."""
    if not counts:
        return "no cells"
    low, high = min(counts), max(counts)
    n = f"{low}" if low == high else f"{low}-{high}"
    bars = ("error bars: ±1 std over seeds" if low >= 2 else
            "error bars: ±1 std over seeds where a point has 2 or more (none on 1-seed points)" if high >= 2 else
            "no error bars (fewer than 2 seeds per point)")
    return f"mean of {n} seed{'s' if high > 1 else ''} per point; {bars}"


def verdict_text(verdict: Verdict, comparisons: tuple[Comparison, ...] | list[Comparison] = ()) -> str:
    """``Holds here``, ``Not separable: one seed, ...``: a verdict judged on ``comparisons``."""
    if verdict is Verdict.NOT_SEPARABLE:
        if all(c.spread is None for c in comparisons):
            return "Not separable: one seed, so no spread to judge a difference against"
        return "Not separable: every difference is within the spread across seeds"
    return _VERDICT_TEXT[verdict]


def called(c: Comparison | Difference | None) -> str:
    """One difference's call in a table cell: better / worse beyond the spread, or not separable."""
    return "–" if c is None else "not separable" if not c.separable else "worse" if c.diff > 0 else "better"


def _counts(points: list[Comparison]) -> str:
    worse = sum(p.separable and p.diff > 0 for p in points)
    better = sum(p.separable and p.diff < 0 for p in points)
    return f"{worse} worse and {better} better beyond the seed spread, {len(points) - worse - better} within it"


def _sparsities(points: list[Comparison]) -> str:
    return ", ".join(f"{c.sparsity:g}" for c in points)


def _parp_vs_omp(claim: ClaimVerdict) -> str:
    metric, figures = claim.metric, claim.figures
    diffs = ", ".join(f"{c.language} {c.sparsity:g}: {c.difference}" for c in claim.comparisons)
    accuracy = (f"PARP − OMP {metric.upper()} (± spread across seeds): {diffs}"
                + (f" — judged on CER because every WER is saturated (≥ {WER_SATURATED})"
                   if metric == "cer" else ""))
    cheaper = (f"PARP used {figures['steps_ratio']:.2f}x OMP's fine-tuning steps and {figures['wall_ratio']:.2f}x its "
               "wall time")
    verdict = ("Does not hold here (PARP was not cheaper)" if figures["not_cheaper"] else
               verdict_text(claim.verdict, claim.comparisons))
    return f"{verdict}: {accuracy}; {cheaper}."


def _parp_beats_dense(claim: ClaimVerdict) -> str:
    label, parts = claim.metric.upper(), []
    for part in claim.parts:
        diffs = part.with_sides("parp", "none")
        better = [c for c in diffs if c.separable and c.diff < 0]
        omp_better = [c for c in part.with_sides("omp", "none") if c.separable and c.diff < 0]
        held = {Verdict.HOLDS: "yes", Verdict.FAILS: "no"}.get(part.verdict, "not separable")
        listed = ", ".join(f"{c.sparsity:g}: {c.difference}" for c in diffs)
        parts.append(f"{part.subject}: {held}" + (f" at {_sparsities(better)}" if better else "")
                     + f" (PARP − unpruned {label}, unpruned {part.figures['unpruned']:.3f}: {listed}; OMP beats it "
                     + (f"beyond the spread at {_sparsities(omp_better)})" if omp_better else
                        "beyond the spread at no tested sparsity)"))
    verdict = ("Not separable (differences within the spread across seeds, or one seed)"
               if claim.verdict is Verdict.NOT_SEPARABLE else _VERDICT_TEXT[claim.verdict])
    return f"{verdict}. " + "; ".join(parts) + "."


def shared_start_note(part: ClaimVerdict) -> str:
    pretrained = part.figures.get("pretrained")
    if pretrained is None:
        return ""
    return (f"; each mask's IoU with the pretrained weights' magnitude mask is {pretrained:.3f}, so "
            + ("the shared pretrained start accounts for most of the cross-language overlap"
               if part.figures["start_explains"] else "the languages share more than the pretrained start explains"))


def _languages_vs_seeds(f: dict) -> str:
    """Two languages' masks against two seeds' of one language: the floor set by training noise alone."""
    versus = f.get("languages_vs_seeds")
    if versus is None:
        return ""
    seeds = f"{f['across_seeds']:.3f}" + (f" ± {f['across_seeds_sd']:.3f}" if f["seed_languages"] > 1 else "")
    if not versus.separable:
        verdict = "languages differ no more than seeds do (not separable)"
    elif versus.diff < 0:
        verdict = "languages differ more than seeds do, beyond the spread"
    else:
        verdict = "languages overlap more than seeds do, beyond the spread"
    return (f"; two seeds of one language overlap {seeds} (mean over {f['seed_languages']} language(s)), languages "
            f"minus seeds {versus}: {verdict}")


def _overlap(claim: ClaimVerdict) -> str:
    parts = []
    for part in claim.parts:
        f = part.figures
        parts.append(f"{part.subject} {f['sparsity']:g}: IoU {f['mean']:.3f} vs {f['random']:.3f} for random masks"
                     + (f" ({f['random_matched']:.3f} layer-matched)" if f["random_matched"] else "")
                     + shared_start_note(part) + _languages_vs_seeds(f))
    return (f"{_VERDICT_TEXT[claim.verdict]} (strong = IoU ≥ 0.5 and at least 0.1 above random): "
            + "; ".join(parts) + ".")


def _across_pairs(sign: tuple[int, int, float]) -> str:
    lower, n, p = sign
    return f"{lower} of {n} lower, sign test over pairs p = {p:.2g}"


def _transfer(claim: ClaimVerdict) -> str:
    label = claim.metric.upper()
    moved, twin = claim.with_sides("transfer", "parp"), claim.with_sides("transfer", "transfer-random")
    text = (f"{verdict_text(claim.verdict, moved)}: {label}(B | mask of A) − {label}(B | own start) over "
            f"{len(moved)} ordered pairs: {_counts(moved)} (mean {mean(c.diff for c in moved):+.3f}; "
            f"{_across_pairs(claim.figures['sign_test'])})")
    if twin:
        text += (f"; {label}(B | mask of A) − {label}(B | random twin of A, same per-tensor sparsities): "
                 f"{_counts(twin)} (mean {mean(c.diff for c in twin):+.3f}; "
                 f"{_across_pairs(claim.figures['control_sign_test'])})")
    return text + "."


def _multilingual(claim: ClaimVerdict) -> str:
    parts = []
    for part in claim.parts:
        points = list(part.comparisons)
        worse = sum(c.separable and c.diff > 0 for c in points)
        better = sum(c.separable and c.diff < 0 for c in points)
        diffs = [c.diff for c in points]
        parts.append(f"`{part.subject}` ({fmt(part.figures['updates'], 0)} updates over all languages): "
                     f"{verdict_text(part.verdict, points)}, {part.metric.upper()} multi − own PARP in {len(points)} "
                     f"languages: {worse} worse and {better} better beyond the seed spread (mean {mean(diffs):+.3f}, "
                     f"{min(diffs):+.3f} to {max(diffs):+.3f})")
    return "; ".join(parts) + f". Each language's own PARP model: {fmt(claim.figures['own_updates'], 0)} updates."


_RENDER = {"a": _parp_vs_omp, "b": _parp_beats_dense, "c": _overlap, "d": _transfer, "e": _multilingual}


def render_claim(claim: ClaimVerdict) -> str:
    """The sentence a report states for a claim: its verdict, then the differences behind it."""
    if claim.verdict is Verdict.NOT_MEASURED:
        return NOT_MEASURED[claim.claim]
    return _RENDER[claim.claim](claim)


def claim_item(claim: ClaimVerdict) -> str:
    """The claim's bullet in the report's first section."""
    return f"- **{CLAIM_TITLES[claim.claim]}** {render_claim(claim)}"


def equal_budget_item(claim: ClaimVerdict) -> str:
    (c,) = claim.comparisons
    return (f"- {c.language} {c.sparsity:g}, {c.updates} updates each: PARP − OMP {claim.metric.upper()} "
            f"{c.difference}: {verdict_text(claim.verdict, claim.comparisons)}.")
