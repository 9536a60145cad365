"""The numbers of a report, without matplotlib: result rows aggregated over seeds, mask statistics, and the verdicts
on the PARP paper's claims (PARP ~ OMP at half the cost; a sparsity range where PARP beats the unpruned model; similar
subnetworks across languages, compared with the IoU of random masks).

Reads only result rows and the cells' final mask files: never models or sweeps.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..sparsity import Mask
from ..sparsity.overlap import layer_of, random_iou, random_iou_matched

WER_SATURATED = 0.95  # every WER at or above this: fewer than 1 word in 20 right, so WER cannot rank methods

METHOD_ORDER = ["none", "parp", "omp", "imp", "mpi", "random", "parp-multi"]


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(values) if values else None


def _std(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Difference:
    """Mean(A) - mean(B) over seeds, set against the spread across seeds (the larger of the two sides' standard
    deviations). A claim is called held or failed on it only when the difference exceeds that spread; with fewer
    than two seeds on a side no spread is measured and nothing is separable."""

    diff: float
    spread: float | None

    @property
    def separable(self) -> bool:
        return self.spread is not None and abs(self.diff) > self.spread

    def __str__(self) -> str:
        return f"{self.diff:+.3f} " + (f"± {self.spread:.3f}" if self.spread is not None else "(one seed)")


def difference(a: list[float], b: list[float]) -> Difference | None:
    a = [v for v in a if v is not None and math.isfinite(v)]
    b = [v for v in b if v is not None and math.isfinite(v)]
    if not a or not b:
        return None
    spread = max(_std(a), _std(b)) if len(a) > 1 and len(b) > 1 else None
    return Difference(statistics.fmean(a) - statistics.fmean(b), spread)


def _fmt_spread(values: list[float]) -> str:
    """Mean, and ± the standard deviation across seeds where there are several."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return _fmt(_mean(values)) + (f" ± {_std(values):.3f}" if len(values) > 1 else "")


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def is_multilingual(method: str) -> bool:
    """``parp-multi`` and ``parp-multi-<updates>`` (a multilingual run with its own budget): one run over all
    languages, whose rows are not a language's own cells."""
    return method == "parp-multi" or method.startswith("parp-multi-")


def _order(methods) -> list[str]:
    return sorted(set(methods), key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))



def by_data_size(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Methods are compared within one data size: in a sweep over ``train_hours`` each (language, size) is reported
    as a language of its own, ``mboshi-0.167h`` ... ``mboshi-all``; rows of a sweep without sizes are unchanged."""
    if all(r.get("train_hours") is None for r in rows):
        return list(rows)

    def sized(name: str | None, hours: float | None) -> str | None:
        return None if name is None else f"{name}-{'all' if hours is None else f'{hours:g}h'}"

    return [{**r, "base_language": r["language"], "language": sized(r["language"], r.get("train_hours")),
             "mask_from": sized(r.get("mask_from"), r.get("train_hours"))} for r in rows]


class Tables:
    """Result rows (one per cell and seed) with the aggregations and verdicts a report states."""

    def __init__(self, rows: list[dict[str, Any]], base: Path, extra_rows: list[dict[str, Any]] = ()):
        if not rows:
            raise ConfigError("the results file has no rows: no sweep cell has finished yet")
        rows = by_data_size(rows)
        # transfer cells (a mask from another language) have their own section; every other table is per language
        self.transfer_rows = [r for r in rows if r.get("mask_from")]
        self.rows = [r for r in rows if not r.get("mask_from")] or rows
        self.base = base
        # masks of other sweeps (--extra_masks): more languages in the mask analyses, never in the error tables
        self.extra_rows = list(extra_rows)
        self.languages = sorted({r["language"] for r in rows})
        self.methods = _order(r["method"] for r in self.rows)
        self.seeds = sorted({r["seed"] for r in rows})
        self._masks: dict[str, Any] = {}
        self.overlap: dict[tuple[str, float], dict[str, Any]] = {}

    def cells(self, **where) -> list[dict[str, Any]]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in where.items())]

    def mask_cells(self, **where) -> list[dict[str, Any]]:
        """Like :meth:`cells`, with the extra sweeps' rows: the rows whose masks the overlap analyses compare."""
        return [r for r in self.rows + self.extra_rows if all(r.get(k) == v for k, v in where.items())]

    def masks_by_language(self, method: str, sparsity: float) -> dict[str, dict[int, Any]]:
        """language -> seed -> final mask of ``method`` at ``sparsity`` (extra sweeps' languages included)."""
        result: dict[str, dict[int, Any]] = {}
        for row in self.mask_cells(method=method, sparsity_target=sparsity):
            mask = self.mask(row)
            if mask is not None:
                result.setdefault(row["language"], {})[row["seed"]] = mask
        return result

    def mean(self, key: str, **where) -> float | None:
        return _mean(r.get(key) for r in self.cells(**where))

    def sparsities(self, method: str, language: str | None = None) -> list[float]:
        where = {"method": method, **({"language": language} if language else {})}
        return sorted({r["sparsity_target"] for r in self.cells(**where)})

    def mask(self, row: dict[str, Any]):
        path = row.get("mask")
        if not path:
            return None
        full = Path(path) if Path(path).is_absolute() else self.base / path
        if str(full) not in self._masks:
            self._masks[str(full)] = Mask.load(full) if full.is_file() else None
        return self._masks[str(full)]


    def cost_by_method(self) -> dict[str, dict[str, float | None]]:
        return {m: {"steps": self.mean("finetune_steps", method=m), "finetunings": self.mean("finetunings", method=m),
                    "wall": self.mean("wall_seconds", method=m)} for m in self.methods}


    def per_layer_sparsity(self) -> dict[tuple[str, float], dict[tuple[str, str], float]]:
        """Mean (over languages and seeds) sparsity of each (encoder layer, tensor type) in the final masks."""
        result = {}
        for method in self.methods:
            if method == "none" or is_multilingual(method):
                continue
            for s in self.sparsities(method):
                cells: dict[tuple[str, str], list[float]] = defaultdict(list)
                for row in self.cells(method=method, sparsity_target=s):
                    mask = self.mask(row)
                    if mask is None:
                        continue
                    for name in mask:
                        m = mask[name]
                        cells[(layer_of(name), tensor_type(name))].append(1 - int(m.sum()) / max(m.numel(), 1))
                if cells:
                    result[(method, s)] = {k: statistics.fmean(v) for k, v in cells.items()}
        return result


    def cross_language_iou(self) -> dict[tuple[str, float], dict[str, Any]]:
        """Per (method, sparsity) present in several languages: the language x language IoU matrix (seed-mean)."""
        result = {}
        for method in self.methods:
            if method == "none" or is_multilingual(method):
                continue
            for s in self.sparsities(method):
                languages = sorted({r["language"] for r in self.mask_cells(method=method, sparsity_target=s)})
                if len(languages) < 2:
                    continue
                matrix = [[1.0] * len(languages) for _ in languages]
                matched = []
                for i, a in enumerate(languages):
                    for j, b in enumerate(languages):
                        if j <= i:
                            continue
                        ious = []
                        for seed in self.seeds:
                            ra = self.mask_cells(method=method, sparsity_target=s, language=a, seed=seed)
                            rb = self.mask_cells(method=method, sparsity_target=s, language=b, seed=seed)
                            ma = self.mask(ra[0]) if ra else None
                            mb = self.mask(rb[0]) if rb else None
                            if ma is not None and mb is not None:
                                ious.append(ma.iou(mb))
                                matched.append(random_iou_matched(ma, mb))
                        matrix[i][j] = matrix[j][i] = _mean(ious) if ious else math.nan
                off = [matrix[i][j] for i in range(len(languages)) for j in range(i + 1, len(languages))
                       if not math.isnan(matrix[i][j])]
                if off:
                    result[(method, s)] = {"languages": languages, "matrix": matrix, "mean": statistics.fmean(off),
                                           "random": random_iou(s), "random_matched": _mean(matched),
                                           "pretrained": self.mean("iou_with_pretrained_mask", method=method,
                                                                   sparsity_target=s)}
        return result


    def method_mask_overlap(self) -> dict[tuple[str, float], dict[str, Any]]:
        """Per (language, sparsity): IoU of the pruned sets of two methods' final masks (same seed, mean over
        seeds), of one method's masks across seeds, and of each method's mask with the pretrained magnitude mask
        (recorded when the cell ran). Says how far fine-tuning moves a mask from the pretrained start."""
        result = {}
        pruned = [m for m in self.methods if m not in ("none", "parp-multi")]
        for language in self.languages:
            for s in sorted({r["sparsity_target"] for r in self.cells(language=language) if r["method"] in pruned}):
                masks = {(m, seed): self.mask(rows[0]) for m in pruned for seed in self.seeds
                         if (rows := self.cells(language=language, method=m, sparsity_target=s, seed=seed))}
                masks = {k: v for k, v in masks.items() if v is not None}
                methods = [m for m in pruned if any(k[0] == m for k in masks)]
                pairs = {}
                for i, a in enumerate(methods):
                    for b in methods[i + 1:]:
                        ious = [masks[(a, seed)].iou(masks[(b, seed)]) for seed in self.seeds
                                if (a, seed) in masks and (b, seed) in masks]
                        if ious:
                            pairs[(a, b)] = ious
                across_seeds = {}
                for m in methods:
                    seeded = [masks[(m, seed)] for seed in self.seeds if (m, seed) in masks]
                    ious = [x.iou(y) for i, x in enumerate(seeded) for y in seeded[i + 1:]]
                    if ious:
                        across_seeds[m] = _mean(ious)
                if pairs or across_seeds:
                    result[(language, s)] = {
                        "pairs": pairs, "across_seeds": across_seeds, "random": random_iou(s),
                        "pretrained": {m: self.mean("iou_with_pretrained_mask", language=language, method=m,
                                                    sparsity_target=s) for m in methods}}
        return result

    @staticmethod
    def equal_budget(rows: list[dict[str, Any]], methods: tuple[str, ...] = ("parp", "omp")
                     ) -> dict[tuple[str, float, str, int], list[float]]:
        """PARP and OMP error grouped by total fine-tuning updates, from sweeps run with different step budgets:
        ``(language, sparsity, method, total updates) -> values over seeds`` of the claim metric."""
        metric = "per" if any(r.get("per") is not None for r in rows) else "cer"
        groups: dict[tuple[str, float, str, int], list[float]] = defaultdict(list)
        for r in rows:
            if r["method"] in methods and r.get(metric) is not None and r.get("finetune_steps"):
                groups[(r["language"], r["sparsity_target"], r["method"], int(r["finetune_steps"]))].append(r[metric])
        return dict(groups)

    @property
    def error_metrics(self) -> tuple[str, ...]:
        """("per",) when the targets are phones (the rows carry PER), else ("wer", "cer")."""
        return ("per",) if any(r.get("per") is not None for r in self.rows) else ("wer", "cer")

    @property
    def metric_label(self) -> str:
        return "/".join(m.upper() for m in self.error_metrics)

    @property
    def claim_metric(self) -> str:
        """WER, unless every WER is saturated (>= WER_SATURATED: short runs spell almost no word right, and WER
        moves by noise between 0.98 and 1.01) while CER still differs; PER for phone targets."""
        if self.error_metrics == ("per",):
            return "per"
        wers = [r["wer"] for r in self.rows if r.get("wer") is not None]
        return "wer" if wers and min(wers) < WER_SATURATED else "cer"

    def differences(self, metric: str, method: str, reference: str, language: str, s: float) -> Difference | None:
        """``method`` - ``reference`` at sparsity ``s`` (the unpruned reference has no sparsity)."""
        values = lambda m: [r[metric] for r in self.cells(method=m, language=language,  # noqa: E731
                                                          **({} if m == "none" else {"sparsity_target": s}))]
        return difference(values(method), values(reference))

    @staticmethod
    def verdict(points: list[Difference], lower_is_claimed: bool) -> str:
        """Held where the claimed direction exceeds the seed spread, failed where the opposite does, and 'not
        separable' where every difference is within it."""
        good = sum(p.separable and (p.diff < 0) == lower_is_claimed for p in points)
        bad = sum(p.separable and (p.diff < 0) != lower_is_claimed for p in points)
        if not good and not bad:
            one_seed = all(p.spread is None for p in points)
            return ("Not separable: one seed, so no spread to judge a difference against" if one_seed else
                    "Not separable: every difference is within the spread across seeds")
        if bad == 0:
            return "Holds here"
        return "Holds partly" if good else "Does not hold here"

    def claim_parp_vs_omp(self) -> str:
        metric = self.claim_metric
        points = []
        for language in self.languages:
            for s in self.sparsities("parp", language):
                d = self.differences(metric, "parp", "omp", language, s)
                if d is not None:
                    points.append((language, s, d))
        if not points:
            return "Not measured (the sweep needs both PARP and OMP at the same sparsity)."
        cost = self.cost_by_method()
        steps = cost["parp"]["steps"] / cost["omp"]["steps"] if cost["omp"]["steps"] else math.nan
        wall = cost["parp"]["wall"] / cost["omp"]["wall"] if cost["omp"]["wall"] else math.nan
        diffs = ", ".join(f"{lang} {s:g}: {d}" for lang, s, d in points)
        accuracy = (f"PARP − OMP {metric.upper()} (± spread across seeds): {diffs}"
                    + (f" — judged on CER because every WER is saturated (≥ {WER_SATURATED})" if metric == "cer" else ""))
        cheaper = f"PARP used {steps:.2f}x OMP's fine-tuning steps and {wall:.2f}x its wall time"
        # "≈ OMP" is contradicted only where PARP is worse beyond the spread
        verdict = self.verdict([d for *_, d in points], lower_is_claimed=True)
        if steps > 0.6:
            verdict = "Does not hold here (PARP was not cheaper)"
        return f"{verdict}: {accuracy}; {cheaper}."

    def claim_parp_beats_dense(self) -> str:
        """Existential: held for a language where PARP beats the unpruned model beyond the spread at some sparsity,
        failed where it is worse beyond the spread at every tested one, not separable otherwise."""
        metric = self.claim_metric
        label = metric.upper()
        parts, held = [], []
        for language in self.languages:
            dense = self.mean(metric, method="none", language=language)
            sparsities = self.sparsities("parp", language)
            if dense is None or not sparsities:
                continue
            diffs = {s: self.differences(metric, "parp", "none", language, s) for s in sparsities}
            better = [s for s, d in diffs.items() if d.separable and d.diff < 0]
            worse_everywhere = all(d.separable and d.diff > 0 for d in diffs.values())
            held.append("yes" if better else "no" if worse_everywhere else "not separable")
            omp_better = [s for s in sparsities if (d := self.differences(metric, "omp", "none", language, s))
                          and d.separable and d.diff < 0]
            listed = ", ".join(f"{s:g}: {d}" for s, d in diffs.items())
            parts.append(f"{language}: {held[-1]}"
                         + (f" at {', '.join(f'{s:g}' for s in better)}" if better else "")
                         + f" (PARP − unpruned {label}, unpruned {dense:.3f}: {listed}; OMP beats it beyond the "
                         + (f"spread at {', '.join(f'{s:g}' for s in omp_better)})" if omp_better else
                            "spread at no tested sparsity)"))
        if not parts:
            return "Not measured (the sweep needs PARP cells and the unpruned cell of the same language)."
        if all(h == "yes" for h in held):
            verdict = "Holds here"
        elif "yes" in held:
            verdict = "Holds for some languages"
        elif all(h == "no" for h in held):
            verdict = "Does not hold here"
        else:
            verdict = "Not separable (differences within the spread across seeds, or one seed)"
        return f"{verdict}. " + "; ".join(parts) + "."

    @staticmethod
    def shared_start_note(info: dict[str, Any]) -> str:
        pretrained = info.get("pretrained")
        if pretrained is None:
            return ""
        explained = info["mean"] <= pretrained + 0.05
        return (f"; each mask's IoU with the pretrained weights' magnitude mask is {pretrained:.3f}, so "
                + ("the shared pretrained start accounts for most of the cross-language overlap" if explained else
                   "the languages share more than the pretrained start explains"))

    def multilingual_runs(self) -> list[str]:
        """The multilingual methods present (``parp-multi``, ``parp-multi-<updates>``), fewest updates first."""
        return sorted((m for m in self.methods if is_multilingual(m)),
                      key=lambda m: (self.mean("finetune_steps", method=m) or 0, m))

    def claim_multilingual(self) -> str | None:
        """The verdict on "one multilingual subnetwork from one run serves every language": per multilingual run,
        its error on each language minus that language's own PARP model's. A multilingual run usually has one seed:
        then the own models' seed spread is the yardstick."""
        metric, parts = self.claim_metric, []
        for method in self.multilingual_runs():
            points = []
            for language in self.languages:
                for s in self.sparsities(method, language):
                    multi = [r.get(metric) for r in self.cells(method=method, language=language, sparsity_target=s)]
                    own = [r.get(metric) for r in self.cells(method="parp", language=language, sparsity_target=s)]
                    d = difference(multi, own)
                    if d is not None and d.spread is None and len([v for v in own if v is not None]) > 1:
                        d = Difference(d.diff, _std(own))
                    if d is not None:
                        points.append(d)
            if points:
                worse = sum(d.separable and d.diff > 0 for d in points)
                better = sum(d.separable and d.diff < 0 for d in points)
                parts.append(f"`{method}` ({_fmt(self.mean('finetune_steps', method=method), 0)} updates over all "
                             f"languages): {self.verdict(points, lower_is_claimed=True)}, {metric.upper()} multi − own "
                             f"PARP in {len(points)} languages: {worse} worse and {better} better beyond the seed "
                             f"spread (mean {_mean(d.diff for d in points):+.3f}, "
                             f"{min(d.diff for d in points):+.3f} to {max(d.diff for d in points):+.3f})")
        if not parts:
            return None
        own_steps = self.mean("finetune_steps", method="parp")
        return "; ".join(parts) + f". Each language's own PARP model: {_fmt(own_steps, 0)} updates."

    def claim_overlap(self) -> str:
        overlap = self.overlap
        if not overlap:
            return "Not measured (needs masks of the same method and sparsity in at least two languages)."
        parts, strong = [], 0
        for (method, s), info in sorted(overlap.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            baseline = max(info["random"], info["random_matched"] or 0.0)
            is_strong = info["mean"] >= 0.5 and info["mean"] >= baseline + 0.1
            strong += is_strong
            parts.append(f"{method} {s:g}: IoU {info['mean']:.3f} vs {info['random']:.3f} for random masks"
                         + (f" ({info['random_matched']:.3f} layer-matched)" if info["random_matched"] else "")
                         + self.shared_start_note(info))
        verdict = ("Holds here" if strong == len(overlap) else "Holds partly" if strong else "Does not hold here")
        return (f"{verdict} (strong = IoU ≥ 0.5 and at least 0.1 above random): " + "; ".join(parts) + ".")


def _spread(values: list[list[float]]) -> list[float] | None:
    """Standard deviations for error bars (none on a point with one seed), or None when no point has 2 seeds."""
    if not values or all(len(v) < 2 for v in values):
        return None
    return [_std(v) if len(v) >= 2 else 0.0 for v in values]


def _seed_caption(counts: set[int]) -> str:
    if not counts:
        return "no cells"
    low, high = min(counts), max(counts)
    n = f"{low}" if low == high else f"{low}-{high}"
    bars = ("error bars: ±1 std over seeds" if low >= 2 else
            "error bars: ±1 std over seeds where a point has 2 or more (none on 1-seed points)" if high >= 2 else
            "no error bars (fewer than 2 seeds per point)")
    return f"mean of {n} seed{'s' if high > 1 else ''} per point; {bars}"


_TENSOR_LABELS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "out", "intermediate_dense": "ffn in",
                  "output_dense": "ffn out"}


def tensor_type(name: str) -> str:
    """``...layers.3.attention.q_proj.weight`` -> ``q``; ``feed_forward.output_dense`` -> ``ffn out``."""
    module = name.rsplit(".", 1)[0] if name.endswith((".weight", ".bias")) else name
    short = module.rsplit(".", 1)[-1]
    return _TENSOR_LABELS.get(short, short)



def _layer_key(name: str):
    return (0, int(name.split()[1])) if name.startswith("layer ") else (1, name)

