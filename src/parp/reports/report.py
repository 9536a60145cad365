"""``parp report``: a self-contained Markdown report with PNG plots, built only from a sweep's results.

Everything shown comes from ``results.csv`` and the cells' final mask files: error vs sparsity, cost, per-layer
sparsity, cross-language mask overlap, and plain sentences saying whether the PARP paper's claims hold in THIS
data (PARP ~ OMP at half the cost; a sparsity range where PARP beats the unpruned model; similar subnetworks
across languages, compared with the IoU of random masks).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError
from ..experiments.masks import layer_of, random_iou, random_iou_matched
from ..experiments.sweep import read_results

METHOD_ORDER = ["none", "parp", "omp", "imp", "mpi", "random", "parp-multi"]


@dataclass
class ReportArguments:
    results: str = field(default="runs/sweep/results.csv", metadata={
        "help": "results.csv / results.json of a sweep, or the sweep folder."})
    output_dir: str | None = field(default=None, metadata={
        "help": "Where report.md and the plots go (default: the folder of the results file)."})


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


def _order(methods) -> list[str]:
    return sorted(set(methods), key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Report:
    """Aggregates result rows (means over seeds) and writes report.md plus plots into ``output_dir``."""

    def __init__(self, rows: list[dict[str, Any]], base: Path, output_dir: Path):
        if not rows:
            raise ConfigError("the results file has no rows: no sweep cell has finished yet")
        self.rows, self.base, self.output_dir = rows, base, output_dir
        self.languages = sorted({r["language"] for r in rows})
        self.methods = _order(r["method"] for r in rows)
        self.seeds = sorted({r["seed"] for r in rows})
        self.lines: list[str] = []
        self.figures: list[str] = []
        self._masks: dict[str, Any] = {}
        self._pretrained: dict[Any, dict[str, Any]] = {}
        self._pretrained_masks: dict[tuple, Any] = {}
        self.overlap: dict[tuple[str, float], dict[str, Any]] = {}

    # ------------------------------------------------------------------ helpers
    def cells(self, **where) -> list[dict[str, Any]]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in where.items())]

    def mean(self, key: str, **where) -> float | None:
        return _mean(r.get(key) for r in self.cells(**where))

    def sparsities(self, method: str, language: str | None = None) -> list[float]:
        where = {"method": method, **({"language": language} if language else {})}
        return sorted({r["sparsity_target"] for r in self.cells(**where)})

    def mask(self, row: dict[str, Any]):
        from ..sparsity import Mask

        path = row.get("mask")
        if not path:
            return None
        full = Path(path) if Path(path).is_absolute() else self.base / path
        if str(full) not in self._masks:
            self._masks[str(full)] = Mask.load(full) if full.is_file() else None
        return self._masks[str(full)]

    def save(self, fig, name: str) -> str:
        path = self.output_dir / name
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(path, dpi=110)
        _plt().close(fig)
        self.figures.append(name)
        return name

    # ------------------------------------------------------------------ sections
    def build(self) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        pruned_methods = [m for m in self.methods if m != "none"]
        self.lines += [
            "# PARP sweep report", "",
            f"{len(self.rows)} result rows; languages: {', '.join(self.languages)}; methods: "
            f"{', '.join(self.methods)}; seeds: {', '.join(map(str, self.seeds))}. Numbers are means over seeds; "
            f"{self.metric_label} are greedy CTC on each language's validation split. Every cell used the same "
            "fine-tuning schedule.", f"{self.metric_label} are mean ± standard deviation across seeds where a cell "
            "has several.", ""]
        self.overlap = self.cross_language_iou() if pruned_methods else {}
        self.section_claims()
        self.section_results()
        self.section_error_plots()
        self.section_cost()
        if pruned_methods:
            self.section_per_layer()
            self.section_overlap()
        self.section_multilingual()
        path = self.output_dir / "report.md"
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return path

    def section_results(self) -> None:
        self.lines += ["## Results", "",
                       "| language | method | target | achieved | "
                       + "".join(f"{m.upper()} | " for m in self.error_metrics)
                       + "steps | fine-tunings | wall s | dense MB | compressed MB | seeds |",
                       "|---|---|---|---|" + "---|" * len(self.error_metrics) + "---|---|---|---|---|---|"]
        for language in self.languages:
            for method in self.methods:
                for s in self.sparsities(method, language):
                    cells = self.cells(language=language, method=method, sparsity_target=s)
                    mb = lambda key: _mean(r[key] / 1e6 if r.get(key) else None for r in cells)  # noqa: E731
                    self.lines.append(
                        f"| {language} | {method} | {s:g} | {_fmt(_mean(r.get('sparsity_achieved') for r in cells), 4)}"
                        + "".join(f" | {_fmt_spread([r.get(m) for r in cells])}" for m in self.error_metrics)
                        + f" | {_fmt(_mean(r['finetune_steps'] for r in cells), 0)}"
                        f" | {_fmt(_mean(r['finetunings'] for r in cells), 1)}"
                        f" | {_fmt(_mean(r['wall_seconds'] for r in cells), 1)} | {_fmt(mb('dense_bytes'), 2)}"
                        f" | {_fmt(mb('compressed_bytes'), 2)} | {len(cells)} |")
        self.lines.append("")

    def section_error_plots(self) -> None:
        plt = _plt()
        self.lines += ["## Error vs sparsity", ""]
        # a saturated WER (every cell >= 0.99) is a flat line at 1.0 whose axis would magnify noise: CER alone then
        metrics = ("wer", "cer") if self.claim_metric == "wer" else (self.claim_metric,)
        if metrics == ("cer",):
            self.lines += ["Every WER is ≥ 0.99 (no word right yet), so only CER is plotted.", ""]
        for language in self.languages:
            fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
            seed_counts: set[int] = set()
            for ax, metric in zip(axes[0], metrics):
                reference = self.mean(metric, language=language, method="none")
                if reference is not None:
                    ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="unpruned (none)")
                for method in self.methods:
                    if method == "none":
                        continue
                    xs = self.sparsities(method, language)
                    if not xs:
                        continue
                    values = [[r[metric] for r in self.cells(language=language, method=method, sparsity_target=s)]
                              for s in xs]
                    seed_counts.update(len(v) for v in values)
                    spread = _spread(values)
                    if spread is None:
                        ax.plot(xs, [_mean(v) for v in values], marker="o", label=method)
                    else:
                        ax.errorbar(xs, [_mean(v) for v in values], yerr=spread, marker="o", capsize=3, label=method)
                ax.set_xlabel("sparsity (fraction of prunable weights removed)")
                ax.set_ylabel(metric.upper())
                ax.set_title(f"{language}: {metric.upper()} vs sparsity")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
            caption = _seed_caption(seed_counts)
            fig.suptitle(f"{language}: {caption}", fontsize=9)
            name = self.save(fig, f"error_vs_sparsity_{language}.png")
            self.lines += [f"![{language}: {self.metric_label} vs sparsity]({name})", "",
                           f"*{language}: {self.metric_label} vs sparsity; {caption}.*", ""]

    def cost_by_method(self) -> dict[str, dict[str, float | None]]:
        return {m: {"steps": self.mean("finetune_steps", method=m), "finetunings": self.mean("finetunings", method=m),
                    "wall": self.mean("wall_seconds", method=m)} for m in self.methods}

    def section_cost(self) -> None:
        plt = _plt()
        cost = self.cost_by_method()
        methods = [m for m in self.methods if cost[m]["steps"] is not None]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        axes[0].bar(methods, [cost[m]["steps"] for m in methods], color="tab:blue")
        axes[0].set_ylabel("fine-tuning steps per cell")
        axes[1].bar(methods, [cost[m]["wall"] or 0 for m in methods], color="tab:orange")
        axes[1].set_ylabel("wall seconds per cell")
        for ax in axes:
            ax.grid(axis="y", alpha=0.3)
            ax.tick_params(axis="x", rotation=30)
        fig.suptitle("Cost per method (mean over cells; reused dense phases counted)")
        name = self.save(fig, "cost.png")
        omp = cost.get("omp", {}).get("steps")
        self.lines += ["## Cost", "", f"![cost per method]({name})", "",
                       "| method | steps | fine-tunings | wall s | steps vs OMP |", "|---|---|---|---|---|"]
        for m in methods:
            ratio = f"{cost[m]['steps'] / omp:.2f}x" if omp else "–"
            self.lines.append(f"| {m} | {_fmt(cost[m]['steps'], 0)} | {_fmt(cost[m]['finetunings'], 1)} | "
                              f"{_fmt(cost[m]['wall'], 1)} | {ratio} |")
        if any(r.get("reused_dense") for r in self.rows):
            self.lines += ["", "OMP/IMP cells marked `reused_dense` loaded the finished unpruned fine-tune instead of "
                               "repeating it; its steps and wall time are included in their cost above."]
        if "parp-multi" in methods:
            self.lines += ["", "`parp-multi` is one run over all languages; its cost is that of the whole run."]
        self.lines.append("")

    def per_layer_sparsity(self) -> dict[tuple[str, float], dict[tuple[str, str], float]]:
        """Mean (over languages and seeds) sparsity of each (encoder layer, tensor type) in the final masks."""
        result = {}
        for method in self.methods:
            if method in ("none", "parp-multi"):
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

    def section_per_layer(self) -> None:
        data = self.per_layer_sparsity()
        if not data:
            return
        self.lines += ["## Per-layer sparsity of the final masks", "",
                       "One figure per target sparsity, one panel per method: encoder layers (rows) x tensor types "
                       "(columns), coloured by the sparsity minus the target (red: pruned more than the target, "
                       "blue: less; white: exactly the target, as uniform pruning would give). Numbers are the "
                       "sparsities themselves, means over languages and seeds.", ""]
        for s in sorted({sp for _, sp in data}):
            panels = {m: v for (m, sp), v in sorted(data.items(), key=lambda kv: _order([kv[0][0]])) if sp == s}
            name = self.save(per_layer_figure(panels, s), f"per_layer_sparsity_s{s:g}.png")
            self.lines += [f"![per-layer sparsity at target {s:g}]({name})", ""]
        layers = sorted({k[0] for v in data.values() for k in v}, key=_layer_key)
        self.lines += ["| method | target | " + " | ".join(layers) + " |", "|---|---|" + "---|" * len(layers)]
        for (method, s), values in sorted(data.items(), key=lambda kv: (kv[0][1], _order([kv[0][0]]))):
            by_layer = {layer: _mean(v for (l2, _), v in values.items() if l2 == layer) for layer in layers}
            self.lines.append(f"| {method} | {s:g} | " + " | ".join(_fmt(by_layer[k]) for k in layers) + " |")
        self.lines += ["", "Global magnitude pruning lets layers differ; the table gives each layer's mean over its "
                           "tensor types.", ""]

    def cross_language_iou(self) -> dict[tuple[str, float], dict[str, Any]]:
        """Per (method, sparsity) present in several languages: the language x language IoU matrix (seed-mean)."""
        result = {}
        for method in self.methods:
            if method in ("none", "parp-multi"):
                continue
            for s in self.sparsities(method):
                languages = sorted({r["language"] for r in self.cells(method=method, sparsity_target=s)})
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
                            ra = self.cells(method=method, sparsity_target=s, language=a, seed=seed)
                            rb = self.cells(method=method, sparsity_target=s, language=b, seed=seed)
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
                                           "pretrained": self.iou_with_pretrained(method, s)}
        return result

    def iou_with_pretrained(self, method: str, sparsity: float) -> float | None:
        """Mean IoU of each language's mask with the magnitude mask of the PRETRAINED weights at the same sparsity.

        Every mask departs from the same pretrained encoder: this says how close each mask stays to that shared
        start. None when the pretrained model cannot be loaded (e.g. a hub id offline) or the scope is N:M.
        """
        from ..models import load_ctc_model
        from ..sparsity import Mask

        rows = [r for r in self.cells(method=method, sparsity_target=sparsity) if self.mask(r) is not None]
        if not rows:
            return None
        try:
            arguments = json.loads((self.base / rows[0]["cell"] / "run.json").read_text())["arguments"]
            name, scope = arguments["model"]["model"], arguments["prune"].get("scope", "global")
            if scope not in ("global", "layer"):
                return None
            if name not in self._pretrained:
                self._pretrained[name] = dict(load_ctc_model(name, vocab_size=32).named_parameters())
        except (ModelError, OSError, KeyError, TypeError, ValueError):  # a reference column, never a reason to fail
            return None
        masks = [self.mask(r) for r in rows]
        key = (name, sparsity, scope, tuple(masks[0]))  # shared by every method pruned at this sparsity
        if key not in self._pretrained_masks:
            params = {n: self._pretrained[name][n].detach() for n in masks[0]}
            self._pretrained_masks[key] = Mask.magnitude(params, sparsity, scope=scope)
        return statistics.fmean(m.iou(self._pretrained_masks[key]) for m in masks)

    def section_overlap(self) -> None:
        if not self.overlap:
            self.lines += ["## Mask overlap across languages", "",
                           "Only one language has masks, so cross-language overlap cannot be measured.", ""]
            return
        plt = _plt()
        self.lines += ["## Mask overlap across languages", "",
                       "IoU of the pruned sets of the final masks of two languages (same method, sparsity, seed). "
                       "Independent random masks at sparsity s give s/(2-s); 'random (layer-matched)' uses the "
                       "masks' own per-tensor sparsities. Every mask starts from the same pretrained weights, so part of any "
                       "overlap comes from that shared start: random masks are the floor, not the whole explanation.",
                       "",
                       "'Each vs pretrained' is the mean IoU of each language's mask with the magnitude mask of the "
                       "pretrained weights at the same sparsity: how close each mask stays to the shared start.", "",
                       "| method | target | mean IoU across languages | each vs pretrained | random s/(2-s) | "
                       "random (layer-matched) |", "|---|---|---|---|---|---|"]
        for (method, s), info in sorted(self.overlap.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            self.lines.append(f"| {method} | {s:g} | {info['mean']:.3f} | {_fmt(info.get('pretrained'))} | "
                              f"{info['random']:.3f} | {_fmt(info['random_matched'])} |")
        self.lines.append("")
        for (method, s), info in sorted(self.overlap.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            n = len(info["languages"])
            fig = iou_heatmap(info["matrix"], info["languages"],
                              f"{method} s={s:g}: IoU of pruned sets\n(random masks: {info['random']:.2f})",
                              random=info["random"])
            name = self.save(fig, f"mask_iou_{method}_s{s:g}.png")
            self.lines += [f"![{method} at {s:g}: language x language mask IoU]({name})", ""]

    def section_multilingual(self) -> None:
        multi = self.cells(method="parp-multi")
        if not multi:
            return
        self.lines += ["## One multilingual subnetwork", "",
                       "PARP run once on the union of all languages, scored on each language's validation split, "
                       "next to each language's own PARP model.", "",
                       "| language | target | " + "".join(f"{m.upper()} multi | {m.upper()} own PARP | "
                                                           for m in self.error_metrics)
                       + "IoU with own PARP mask |", "|---|---|" + "---|---|" * len(self.error_metrics) + "---|"]
        for language in self.languages:
            for s in self.sparsities("parp-multi", language):
                where = dict(language=language, sparsity_target=s)
                self.lines.append(
                    f"| {language} | {s:g} | "
                    + "".join(f"{_fmt(self.mean(m, method='parp-multi', **where))} | "
                              f"{_fmt(self.mean(m, method='parp', **where))} | " for m in self.error_metrics)
                    + f"{_fmt(self.mean('iou_with_language_mask', method='parp-multi', **where))} |")
        self.lines.append("")

    # ------------------------------------------------------------------ claims
    def section_claims(self) -> None:
        self.lines += ["## Do the paper's claims hold here?", ""]
        unit_metric = self.error_metrics[-1]  # CER for characters, PER for phones
        cers = [r[unit_metric] for r in self.rows if r.get(unit_metric) is not None]
        if cers and min(cers) >= 0.99:
            self.lines += [f"**No model learned to emit text (every {unit_metric.upper()} ≥ 0.99)**: the fine-tuning "
                           "schedule is too short for this data and encoder, so the error comparisons below say nothing about the "
                           "methods; only cost and mask statistics are informative.", ""]
        self.lines += [f"- **(a) PARP ≈ OMP at half the fine-tuning cost.** {self.claim_parp_vs_omp()}",
                       f"- **(b) A sparsity range where PARP beats the unpruned model.** {self.claim_parp_beats_dense()}",
                       f"- **(c) Similar pruned subnetworks across languages.** {self.claim_overlap()}", "",
                       f"These statements describe this sweep only ({len(self.seeds)} seed(s)). A claim is called "
                       "held or failed only where a difference exceeds the spread across seeds (the larger standard "
                       "deviation of the two sides); otherwise it is 'not separable'.", ""]

    @property
    def error_metrics(self) -> tuple[str, ...]:
        """("per",) when the targets are phones (the rows carry PER), else ("wer", "cer")."""
        return ("per",) if any(r.get("per") is not None for r in self.rows) else ("wer", "cer")

    @property
    def metric_label(self) -> str:
        return "/".join(m.upper() for m in self.error_metrics)

    @property
    def claim_metric(self) -> str:
        """WER, unless every WER is saturated (>= 0.99: short runs emit no correct word) while CER still differs;
        PER for phone targets."""
        if self.error_metrics == ("per",):
            return "per"
        wers = [r["wer"] for r in self.rows if r.get("wer") is not None]
        return "wer" if wers and min(wers) < 0.99 else "cer"

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
                    + (" — judged on CER because every WER is saturated at 1.0" if metric == "cer" else ""))
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
    """Standard deviations for error bars, or None unless every point has at least 2 seeds."""
    if not values or any(len(v) < 2 for v in values):
        return None
    return [_std(v) for v in values]


def _seed_caption(counts: set[int]) -> str:
    if not counts:
        return "no cells"
    low, high = min(counts), max(counts)
    n = f"{low}" if low == high else f"{low}-{high}"
    bars = "error bars: ±1 std over seeds" if low >= 2 else "no error bars (fewer than 2 seeds per point)"
    return f"mean of {n} seed{'s' if high > 1 else ''} per point; {bars}"


_TENSOR_LABELS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "out", "intermediate_dense": "ffn in",
                  "output_dense": "ffn out"}


def tensor_type(name: str) -> str:
    """``...layers.3.attention.q_proj.weight`` -> ``q``; ``feed_forward.output_dense`` -> ``ffn out``."""
    module = name.rsplit(".", 1)[0] if name.endswith((".weight", ".bias")) else name
    short = module.rsplit(".", 1)[-1]
    return _TENSOR_LABELS.get(short, short)


def per_layer_figure(panels: dict[str, dict[tuple[str, str], float]], target: float):
    """One heatmap per method: layers x tensor types, coloured by sparsity minus ``target`` (shared scale)."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    plt = _plt()
    layers = sorted({k[0] for v in panels.values() for k in v}, key=_layer_key)
    order = list(_TENSOR_LABELS.values())
    types = sorted({k[1] for v in panels.values() for k in v}, key=lambda t: (order.index(t) if t in order else 99, t))
    grids = {m: np.array([[v.get((layer, t), np.nan) for t in types] for layer in layers]) for m, v in panels.items()}
    deviation = max([float(np.nanmax(np.abs(g - target))) for g in grids.values()] + [0.01])
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-deviation, vmax=deviation)
    columns = min(3, len(grids))  # wrap: a grid of panels, never a long strip
    rows = math.ceil(len(grids) / columns)
    width, height = 0.45 * len(types) + 0.8, 0.28 * len(layers) + 1.1
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns + 1.3, height * rows + 0.5), squeeze=False,
                             layout="constrained")
    image = None
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(grids):]:
        ax.set_visible(False)
    for ax, (method, grid) in zip(flat, grids.items()):
        image = ax.imshow(grid - target, cmap="RdBu_r", norm=norm, aspect="auto")
        ax.set_xticks(range(len(types)), types, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(layers)), [k.replace("layer ", "") for k in layers], fontsize=8)
        ax.set_title(method, fontsize=10)
        ax.set_ylabel("encoder layer", fontsize=8)
        if len(layers) * len(types) <= 120:
            for i in range(len(layers)):
                for j in range(len(types)):
                    if not np.isnan(grid[i, j]):
                        ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                                color="white" if abs(grid[i, j] - target) > 0.6 * deviation else "black")
    fig.suptitle(f"Sparsity per layer and tensor, target {target:g} (colour: difference from target)", fontsize=10)
    fig.colorbar(image, ax=flat[:len(grids)], fraction=0.03, pad=0.02, label="sparsity - target")
    return fig


def iou_heatmap(matrix: list[list[float]], labels: list[str], title: str, random: float | None = None):
    """Language x language IoU; the colour scale spans the off-diagonal cells (the 1.0 diagonal is greyed)
    down to the random-mask IoU when given, marked on the colour bar, so colour reads as "above chance"."""
    import numpy as np

    plt = _plt()
    grid = np.array(matrix, dtype=float)
    n = len(labels)
    off = grid[~np.eye(n, dtype=bool)]
    off = off[~np.isnan(off)]
    low, high = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if random is not None:
        low = min(low, random)
    if high - low < 0.05:  # one pair, or all pairs alike: a short span around them
        low, high = max(0.0, low - 0.025), min(1.0, high + 0.025)
    shown = np.ma.masked_where(np.eye(n, dtype=bool) | np.isnan(grid), grid)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.0 * n + 1.8))
    image = ax.imshow(shown, vmin=low, vmax=high, cmap=cmap)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    for i in range(n):
        for j in range(n):
            value = grid[i, j]
            dark = i != j and not np.isnan(value) and (value - low) / (high - low) < 0.6
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, label="IoU (scale: off-diagonal cells and random)")
    if random is not None:
        bar.ax.axhline(random, color="red", linewidth=2)
        bar.ax.text(1.05, random, " random", transform=bar.ax.get_yaxis_transform(), color="red", fontsize=7,
                    va="center", clip_on=False)
    return fig


def _layer_key(name: str):
    return (0, int(name.split()[1])) if name.startswith("layer ") else (1, name)


def build_report(results: str | Path, output_dir: str | Path | None = None) -> Path:
    """Write ``report.md`` and its PNG plots; returns the report's path."""
    results = Path(results)
    base = results if results.is_dir() else results.parent
    rows = read_results(results)
    return Report(rows, base, Path(output_dir) if output_dir else base).build()


def run_report(args: ReportArguments) -> Path:
    path = build_report(args.results, args.output_dir)
    print(f"report: {path}")
    return path
