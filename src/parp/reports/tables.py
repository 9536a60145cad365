"""The numbers of a report, without matplotlib: result rows aggregated over seeds, mask statistics, and the verdicts
on the PARP paper's claims (PARP ~ OMP at half the cost; a sparsity range where PARP beats the unpruned model; similar
subnetworks across languages, compared with the IoU of random masks; one multilingual run), as
:class:`parp.reports.verdicts.ClaimVerdict` data: no sentence is written here (:mod:`parp.reports.markdown` does).

Reads only result rows and the cells' final mask files: never models or sweeps.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..sparsity import Mask
from ..sparsity.overlap import layer_of, random_iou, random_iou_matched
from .stats import Difference, difference, mean, std
from .transfer import transfer_claim, transfer_pairs
from .verdicts import ClaimVerdict, Comparison, Verdict, combine, judge

WER_SATURATED = 0.95  # every WER at or above this: fewer than 1 word in 20 right, so WER cannot rank methods

METHOD_ORDER = ["none", "parp", "omp", "imp", "mpi", "random", "parp-multi"]


def is_multilingual(method: str) -> bool:
    """``parp-multi`` and ``parp-multi-<updates>`` (a multilingual run with its own budget): one run over all
    languages, whose rows are not a language's own cells."""
    return method == "parp-multi" or method.startswith("parp-multi-")


def order_methods(methods) -> list[str]:
    """The methods in the order of every table: unpruned, PARP, OMP, IMP, MPI, random, multilingual, then others."""
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

    def __init__(self, rows: list[dict[str, Any]], base: Path, extra_rows: list[dict[str, Any]] = (),
                 metric: str = "auto"):
        if not rows:
            raise ConfigError("the results file has no rows: no sweep cell has finished yet")
        if metric != "auto" and not any(r.get(metric) is not None for r in rows):
            raise ConfigError(f"--metric {metric}: no result row has a {metric.upper()} (phone targets have PER, "
                              "character targets WER and CER)")
        self.metric = metric
        rows = by_data_size(rows)
        # transfer cells (a mask from another language) have their own section; every other table is per language
        self.transfer_rows = [r for r in rows if r.get("mask_from")]
        self.rows = [r for r in rows if not r.get("mask_from")] or rows
        self.base = base
        # masks of other sweeps (--extra_masks): more languages in the mask analyses, never in the error tables
        self.extra_rows = list(extra_rows)
        self.languages = sorted({r["language"] for r in rows})
        self.methods = order_methods(r["method"] for r in self.rows)
        self.seeds = sorted({r["seed"] for r in rows})
        self._masks: dict[str, Any] = {}

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
        return mean(r.get(key) for r in self.cells(**where))

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


    def cost_by_method(self, **where) -> dict[str, dict[str, float | None]]:
        """Mean steps, fine-tunings and wall seconds per cell of each method (``where``: e.g. one language)."""
        return {m: {"steps": self.mean("finetune_steps", method=m, **where),
                    "finetunings": self.mean("finetunings", method=m, **where),
                    "wall": self.mean("wall_seconds", method=m, **where)} for m in self.methods}

    def data_sizes(self) -> list[str]:
        """The languages as sized by a sweep over data sizes (``mboshi-0.167h``, ``mboshi-all``); [] in other
        sweeps. Each size has its own N(d), so cost is compared within a size."""
        if all(r.get("train_hours") is None for r in self.rows):
            return []
        return self.languages


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


    @cached_property
    def overlap(self) -> dict[tuple[str, float], dict[str, Any]]:
        """:meth:`cross_language_iou`, computed once (it loads and compares every mask)."""
        return self.cross_language_iou()

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
                        matrix[i][j] = matrix[j][i] = mean(ious) if ious else math.nan
                off = [matrix[i][j] for i in range(len(languages)) for j in range(i + 1, len(languages))
                       if not math.isnan(matrix[i][j])]
                if off:
                    result[(method, s)] = {"languages": languages, "matrix": matrix, "mean": statistics.fmean(off),
                                           "pairs_sd": std(off) if len(off) > 1 else None,
                                           "random": random_iou(s), "random_matched": mean(matched),
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
                        across_seeds[m] = mean(ious)
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
        moves by noise between 0.98 and 1.01) while CER still differs; PER for phone targets. ``--metric`` overrides."""
        if self.metric != "auto":
            return self.metric
        if self.error_metrics == ("per",):
            return "per"
        wers = [r["wer"] for r in self.rows if r.get("wer") is not None]
        return "wer" if wers and min(wers) < WER_SATURATED else "cer"

    def differences(self, metric: str, method: str, reference: str, language: str, s: float) -> Difference | None:
        """``method`` - ``reference`` at sparsity ``s`` (the unpruned reference has no sparsity)."""
        values = lambda m: [r[metric] for r in self.cells(method=m, language=language,  # noqa: E731
                                                          **({} if m == "none" else {"sparsity_target": s}))]
        return difference(values(method), values(reference))

    def comparison(self, metric: str, method: str, reference: str, language: str, s: float) -> Comparison | None:
        d = self.differences(metric, method, reference, language, s)
        return None if d is None else Comparison((method, reference), d, language, s)

    def claim_parp_vs_omp(self) -> ClaimVerdict:
        """(a) PARP ~ OMP at half the cost: failed where PARP is worse beyond the spread (or was not cheaper).
        ``figures``: ``steps_ratio``, ``wall_ratio`` (PARP / OMP per cell), ``not_cheaper``."""
        metric = self.claim_metric
        points = [c for language in self.languages for s in self.sparsities("parp", language)
                  if (c := self.comparison(metric, "parp", "omp", language, s)) is not None]
        if not points:
            return ClaimVerdict("a", Verdict.NOT_MEASURED, metric)
        cost = self.cost_by_method()
        steps = cost["parp"]["steps"] / cost["omp"]["steps"] if cost["omp"]["steps"] else math.nan
        wall = cost["parp"]["wall"] / cost["omp"]["wall"] if cost["omp"]["wall"] else math.nan
        # "≈ OMP" is contradicted only where PARP is worse beyond the spread
        verdict = judge(points, lower_is_claimed=True)
        not_cheaper = steps > 0.6
        return ClaimVerdict("a", Verdict.FAILS if not_cheaper else verdict, metric, tuple(points),
                            figures={"steps_ratio": steps, "wall_ratio": wall, "not_cheaper": not_cheaper})

    def claim_parp_beats_dense(self) -> ClaimVerdict:
        """(b) Existential: held for a language where PARP beats the unpruned model beyond the spread at some sparsity,
        failed where it is worse beyond the spread at every tested one, not separable otherwise. One part per
        language, with PARP − unpruned and OMP − unpruned at each sparsity; ``figures``: ``unpruned`` (its mean)."""
        metric = self.claim_metric
        parts = []
        for language in self.languages:
            dense = self.mean(metric, method="none", language=language)
            sparsities = self.sparsities("parp", language)
            if dense is None or not sparsities:
                continue
            diffs = [self.comparison(metric, "parp", "none", language, s) for s in sparsities]
            better = [c for c in diffs if c.separable and c.diff < 0]
            worse_everywhere = all(c.separable and c.diff > 0 for c in diffs)
            omp = [c for s in sparsities if (c := self.comparison(metric, "omp", "none", language, s)) is not None]
            parts.append(ClaimVerdict("b", Verdict.HOLDS if better else Verdict.FAILS if worse_everywhere else
                                      Verdict.NOT_SEPARABLE, metric, tuple(diffs + omp), subject=language,
                                      figures={"unpruned": dense}))
        if not parts:
            return ClaimVerdict("b", Verdict.NOT_MEASURED, metric)
        held = [p.verdict for p in parts]
        if all(v is Verdict.HOLDS for v in held):
            verdict = Verdict.HOLDS
        elif Verdict.HOLDS in held:
            verdict = Verdict.HOLDS_FOR_SOME
        elif all(v is Verdict.FAILS for v in held):
            verdict = Verdict.FAILS
        else:
            verdict = Verdict.NOT_SEPARABLE
        return ClaimVerdict("b", verdict, metric, parts=tuple(parts))

    def multilingual_runs(self) -> list[str]:
        """The multilingual methods present (``parp-multi``, ``parp-multi-<updates>``), fewest updates first."""
        return sorted((m for m in self.methods if is_multilingual(m)),
                      key=lambda m: (self.mean("finetune_steps", method=m) or 0, m))

    def claim_multilingual(self) -> ClaimVerdict | None:
        """(e) "one multilingual subnetwork from one run serves every language": per multilingual run (a part), its
        error on each language minus that language's own PARP model's. A multilingual run usually has one seed:
        then the own models' seed spread is the yardstick. ``figures``: ``updates`` (per part), ``own_updates``."""
        metric, parts = self.claim_metric, []
        for method in self.multilingual_runs():
            points = []
            for language in self.languages:
                for s in self.sparsities(method, language):
                    multi = [r.get(metric) for r in self.cells(method=method, language=language, sparsity_target=s)]
                    own = [r.get(metric) for r in self.cells(method="parp", language=language, sparsity_target=s)]
                    d = difference(multi, own)
                    if d is not None and d.spread is None and len([v for v in own if v is not None]) > 1:
                        d = Difference(d.diff, std(own))
                    if d is not None:
                        points.append(Comparison((method, "parp"), d, language, s))
            if points:
                parts.append(ClaimVerdict("e", judge(points, lower_is_claimed=True), metric, tuple(points),
                                          subject=method,
                                          figures={"updates": self.mean("finetune_steps", method=method)}))
        if not parts:
            return None
        return ClaimVerdict("e", combine(parts), metric, parts=tuple(parts),
                            figures={"own_updates": self.mean("finetune_steps", method="parp")})

    def claim_overlap(self) -> ClaimVerdict:
        """(c) similar subnetworks across languages: one part per (method, sparsity), held where the mean IoU across
        languages is strong (>= 0.5 and at least 0.1 above random masks). ``figures`` of a part: ``mean``,
        ``random``, ``random_matched``, ``pretrained`` IoU, ``start_explains`` (the shared pretrained start
        accounts for the overlap: IoU with the pretrained mask within 0.05 of it), ``sparsity``."""
        if not self.overlap:
            return ClaimVerdict("c", Verdict.NOT_MEASURED)
        parts = []
        for (method, s), info in sorted(self.overlap.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            baseline = max(info["random"], info["random_matched"] or 0.0)
            strong = info["mean"] >= 0.5 and info["mean"] >= baseline + 0.1
            pretrained = info.get("pretrained")
            seeds = [o["across_seeds"][method] for (_, t), o in self.method_mask_overlap().items()
                     if t == s and method in o["across_seeds"]]
            # languages vs seeds, by the noise rule: are two languages' masks further apart than two seeds' of one?
            versus = difference([info["mean"]], seeds) if seeds else None
            spread = max(info.get("pairs_sd") or 0.0, std(seeds)) if len(seeds) > 1 else None
            parts.append(ClaimVerdict("c", Verdict.HOLDS if strong else Verdict.FAILS, subject=method, figures={
                "sparsity": s, "mean": info["mean"], "random": info["random"],
                "random_matched": info["random_matched"], "pretrained": pretrained,
                "start_explains": None if pretrained is None else info["mean"] <= pretrained + 0.05,
                "pairs_sd": info.get("pairs_sd"), "across_seeds": mean(seeds), "across_seeds_sd": std(seeds),
                "seed_languages": len(seeds),
                "languages_vs_seeds": None if versus is None else Difference(versus.diff, spread)}))
        return ClaimVerdict("c", combine(parts), parts=tuple(parts))

    def claims(self) -> list[ClaimVerdict]:
        """Every claim this sweep speaks to, in the report's order: (a)-(c) always, (d) with transfer cells, (e) with
        multilingual runs."""
        unit = self.error_metrics[-1]  # CER for characters, PER for phones
        found = [self.claim_parp_vs_omp(), self.claim_parp_beats_dense(), self.claim_overlap()]
        if self.transfer_rows:
            found.append(transfer_claim(transfer_pairs(self.transfer_rows + self.rows, unit), unit))
        if (multi := self.claim_multilingual()) is not None:
            found.append(multi)
        return found

    def claim_equal_budget(self, budget_rows: list[dict[str, Any]]) -> list[ClaimVerdict]:
        """PARP vs OMP at equal total updates (``equal_budget`` groups), one verdict per language, sparsity and
        budget where both ran."""
        groups = self.equal_budget(self.rows + budget_rows)
        metric = "per" if self.error_metrics == ("per",) else "cer"
        verdicts = []
        for (language, s, method, steps), parp in sorted(groups.items()):
            omp = groups.get((language, s, "omp", steps))
            if method == "parp" and omp and (d := difference(parp, omp)) is not None:
                c = Comparison(("parp", "omp"), d, language, s, updates=steps)
                verdicts.append(ClaimVerdict("equal-budget", judge([c], lower_is_claimed=True), metric, (c,)))
        return verdicts


TENSOR_LABELS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "out", "intermediate_dense": "ffn in",
                 "output_dense": "ffn out"}


def tensor_type(name: str) -> str:
    """``...layers.3.attention.q_proj.weight`` -> ``q``; ``feed_forward.output_dense`` -> ``ffn out``."""
    module = name.rsplit(".", 1)[0] if name.endswith((".weight", ".bias")) else name
    short = module.rsplit(".", 1)[-1]
    return TENSOR_LABELS.get(short, short)


def layer_key(name: str):
    """Sort key: ``layer 2`` before ``layer 10``, encoder layers before other parameters."""
    return (0, int(name.split()[1])) if name.startswith("layer ") else (1, name)

