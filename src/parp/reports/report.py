"""``parp report``: a self-contained Markdown report with PNG plots, built only from a sweep's results.

Everything shown comes from ``results.csv``, the cells' final mask files and run records (never a model): error vs
sparsity, cost, per-layer sparsity, cross-language mask overlap (per layer too, and against the pretrained magnitude
mask), the cross-language transfer matrix, how far PARP's masks move from their start, and plain sentences saying
whether the PARP paper's claims hold in THIS data. The numbers and verdicts are :mod:`parp.reports.tables` (verdicts
as data, :mod:`parp.reports.verdicts`), the figures :mod:`parp.reports.plots`, the sentences
:mod:`parp.reports.markdown`; this module lays out the sections.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..results import read_results
from .extra_masks import extra_mask_rows
from .mask_layers import layer_iou_summary
from ..results import TRANSFER, TRANSFER_RANDOM
from .markdown import called, claim_item, equal_budget_item, fmt, fmt_spread, render_claim, seed_caption
from .plots import (iou_heatmap, layer_iou_figure, per_layer_figure, pyplot, reprune_history_figure,
                    transfer_heatmaps)
from .reprunes import reprune_histories
from .stats import error_bars, mean
from .tables import WER_SATURATED, Tables, is_multilingual, layer_key, order_methods
from .transfer import transfer_claim, transfer_grid, transfer_margins, transfer_pairs

@dataclass
class ReportArguments:
    results: list[str] = field(default_factory=lambda: ["runs/sweep/results.csv"], metadata={
        "help": "results.csv / results.json of a sweep, or the sweep folder; several are merged, a later one's row "
                "replacing an earlier one's for the same cell (e.g. a committed copy of lost cells, then the live "
                "folder)."})
    output_dir: str | None = field(default=None, metadata={
        "help": "Where report.md and the plots go (default: the folder of the results file)."})
    budget_results: list[str] = field(default_factory=list, metadata={
        "help": "Results of the same grid run with other step budgets (e.g. OMP with its fine-tuning split in two, "
                "PARP with twice the updates): PARP and OMP are then also compared at equal total updates."})
    extra_masks: list[str] | None = field(default=None, metadata={
        "help": "NAME=SWEEP_FOLDER ...: another sweep's masks join the mask analyses as language NAME (same method "
                "and sparsity; its error rates stay out), e.g. mboshi=runs/mboshi-seeds/s600."})
    metric: str = field(default="auto", metadata={
        "help": "The error rate the claims are judged on: auto (WER, or CER where every WER is >= 0.95, or PER for "
                "phone targets), wer, cer or per.", "choices": ("auto", "wer", "cer", "per")})



class Report:
    """Writes report.md plus plots into ``output_dir`` from the numbers and verdicts of a :class:`Tables`."""

    def __init__(self, tables: Tables, output_dir: Path, budget_rows: list[dict[str, Any]] | None = None):
        self.tables = tables
        self.output_dir = output_dir
        self.budget_rows = budget_rows or []
        self.lines: list[str] = []
        self.figures: list[str] = []

    def save(self, fig, name: str) -> str:
        path = self.output_dir / name
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(path, dpi=110)
        pyplot().close(fig)
        self.figures.append(name)
        return name

    # ------------------------------------------------------------------ sections
    def build(self) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        pruned_methods = [m for m in self.tables.methods if m != "none"]
        self.lines += [
            "# PARP sweep report", "",
            f"{len(self.tables.rows)} result rows; languages: {', '.join(self.tables.languages)}; methods: "
            f"{', '.join(self.tables.methods)}; seeds: {', '.join(map(str, self.tables.seeds))}. "
            "Numbers are means over seeds; "
            f"{self.tables.metric_label} are greedy CTC on each language's validation split. Every cell used the same "
            "fine-tuning schedule" + (" (but for the updates of `parp-multi-N`: N)" if any(
                m.startswith("parp-multi-") for m in self.tables.methods) else "") + ".",
            f"{self.tables.metric_label} are mean ± standard deviation across seeds where a cell "
            "has several.", ""]
        self.section_claims()
        self.section_results()
        self.section_error_plots()
        self.section_cost()
        if self.budget_rows:
            self.section_equal_budget()
        if pruned_methods:
            self.section_method_masks()
            self.section_per_layer()
            self.section_overlap()
            self.section_layer_overlap()
            self.section_pretrained_overlap()
        self.section_multilingual()
        self.section_transfer()
        self.section_reprunes()
        path = self.output_dir / "report.md"
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return path

    def section_results(self) -> None:
        early = any(r.get("best_step") is not None for r in self.tables.rows)  # early stopping: which update won
        self.lines += ["## Results", "",
                       "| language | method | target | achieved | "
                       + "".join(f"{m.upper()} | " for m in self.tables.error_metrics)
                       + "steps | " + ("best step per seed | " if early else "")
                       + "fine-tunings | wall s | dense MB | compressed MB | seeds |",
                       "|---|---|---|---|" + "---|" * len(self.tables.error_metrics) + "---|---|---|---|---|---|"
                       + ("---|" if early else "")]
        for language in self.tables.languages:
            for method in self.tables.methods:
                for s in self.tables.sparsities(method, language):
                    cells = self.tables.cells(language=language, method=method, sparsity_target=s)
                    mb = lambda key: mean(r[key] / 1e6 if r.get(key) else None for r in cells)  # noqa: E731
                    best = ", ".join("–" if r.get("best_step") is None else str(r["best_step"])
                                     for r in sorted(cells, key=lambda r: r["seed"]))
                    self.lines.append(
                        f"| {language} | {method} | {s:g} | {fmt(mean(r.get('sparsity_achieved') for r in cells), 4)}"
                        + "".join(f" | {fmt_spread([r.get(m) for r in cells])}" for m in self.tables.error_metrics)
                        + f" | {fmt(mean(r['finetune_steps'] for r in cells), 0)}"
                        + (f" | {best}" if early else "")
                        + f" | {fmt(mean(r['finetunings'] for r in cells), 1)}"
                        f" | {fmt(mean(r['wall_seconds'] for r in cells), 1)} | {fmt(mb('dense_bytes'), 2)}"
                        f" | {fmt(mb('compressed_bytes'), 2)} | {len(cells)} |")
        if early:
            self.lines += ["", "Steps are the updates each cell ran (with early stopping, up to the stop; OMP's include "
                               "its dense fine-tuning); the best step is the update of the scored fine-tuning whose "
                               "model won on validation and was exported."]
        self.lines.append("")

    def section_error_plots(self) -> None:
        plt = pyplot()
        self.lines += ["## Error vs sparsity", ""]
        # a saturated WER (every cell >= WER_SATURATED) is a flat line at 1.0 whose axis would magnify noise: CER alone then
        metrics = ("wer", "cer") if self.tables.claim_metric == "wer" else (self.tables.claim_metric,)
        if metrics == ("cer",):
            self.lines += [f"Every WER is ≥ {WER_SATURATED} (almost no word right yet), so only CER is plotted.", ""]
        for language in self.tables.languages:
            fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
            seed_counts: set[int] = set()
            for ax, metric in zip(axes[0], metrics):
                seed_counts |= self._error_panel(ax, language, metric)
                ax.set_title(f"{language}: {metric.upper()} vs sparsity")
            caption = seed_caption(seed_counts)
            fig.suptitle(textwrap.fill(f"{language}: {caption}", 60 * len(metrics)), fontsize=9)
            name = self.save(fig, f"error_vs_sparsity_{language}.png")
            self.lines += [f"![{language}: {self.tables.metric_label} vs sparsity]({name})", "",
                           f"*{language}: {self.tables.metric_label} vs sparsity; {caption}.*", ""]
        self._data_size_plots()

    def _error_panel(self, ax, language: str, metric: str) -> set[int]:
        """One language's error against sparsity, a line per method (mean ± std over seeds), the unpruned model
        dashed; returns the seed counts drawn."""
        seed_counts: set[int] = set()
        reference = self.tables.mean(metric, language=language, method="none")
        if reference is not None:
            ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="unpruned (none)")
        for method in self.tables.methods:
            xs = self.tables.sparsities(method, language) if method != "none" else []
            if not xs:
                continue
            values = [[r[metric] for r in self.tables.cells(language=language, method=method, sparsity_target=s)]
                      for s in xs]
            seed_counts.update(len(v) for v in values)
            spread = error_bars(values)
            if spread is None:
                ax.plot(xs, [mean(v) for v in values], marker="o", label=method)
            else:
                ax.errorbar(xs, [mean(v) for v in values], yerr=spread, marker="o", capsize=3, label=method)
        ax.set_xlabel("sparsity (fraction of prunable weights removed)")
        ax.set_ylabel(metric.upper())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return seed_counts

    def _data_size_plots(self) -> None:
        """The paper's figure for a sweep over data sizes: error vs sparsity, one panel per size of a language."""
        sizes: dict[str, dict[float | None, str]] = {}
        for r in self.tables.rows:
            if "base_language" in r:
                sizes.setdefault(r["base_language"], {})[r.get("train_hours")] = r["language"]
        for base, labels in sorted(sizes.items()):
            if len(labels) < 2:
                continue
            order = sorted(labels, key=lambda h: float("inf") if h is None else h)
            fig, axes = pyplot().subplots(1, len(order), figsize=(4.5 * len(order), 3.8), squeeze=False)
            seed_counts: set[int] = set()
            for ax, hours in zip(axes[0], order):
                seed_counts |= self._error_panel(ax, labels[hours], self.tables.claim_metric)
                ax.set_title(f"{base}: {'all the data' if hours is None else f'{hours:g} h'}")
            caption = seed_caption(seed_counts)
            fig.suptitle(textwrap.fill(f"{base}, by amount of training data: {caption}", 60 * len(order)), fontsize=9)
            name = self.save(fig, f"error_vs_sparsity_by_size_{base}.png")
            self.lines += [f"![{base}: {self.tables.claim_metric.upper()} vs sparsity per data size]({name})", "",
                           f"*{base}: {self.tables.claim_metric.upper()} vs sparsity, one panel per amount of training "
                           f"data; {caption}.*", ""]


    def section_cost(self) -> None:
        plt = pyplot()
        groups = self.tables.data_sizes() or [None]  # one cost table per data size: each has its own N(d)
        costs = {g: self.tables.cost_by_method(**({"language": g} if g else {})) for g in groups}
        methods = [m for m in self.tables.methods if any(c[m]["steps"] is not None for c in costs.values())]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        width = 0.8 / len(groups)
        for i, (group, cost) in enumerate(costs.items()):
            x = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(methods))]
            size = {"label": group} if group else {}
            axes[0].bar(x, [cost[m]["steps"] or 0 for m in methods], width, **(size or {"color": "tab:blue"}))
            axes[1].bar(x, [cost[m]["wall"] or 0 for m in methods], width, **(size or {"color": "tab:orange"}))
        axes[0].set_ylabel("fine-tuning steps per cell")
        axes[1].set_ylabel("wall seconds per cell")
        for ax in axes:
            ax.set_xticks(range(len(methods)), methods)
            ax.grid(axis="y", alpha=0.3)
            ax.tick_params(axis="x", rotation=30)
            if groups != [None]:
                ax.legend(fontsize=7)
        fig.suptitle("Cost per method (mean over cells; reused dense phases counted)")
        name = self.save(fig, "cost.png")
        self.lines += ["## Cost", "", f"![cost per method]({name})", ""]
        if groups != [None]:
            self.lines += ["Per data size: each has its own schedule length N(d), so steps compare within a size.", ""]
        self.lines += [("| data | " if groups != [None] else "| ") + "method | steps | fine-tunings | wall s | "
                       "steps vs OMP |", "|---|---|---|---|---|" + ("---|" if groups != [None] else "")]
        for group, cost in costs.items():
            omp = cost.get("omp", {}).get("steps")
            for m in methods:
                if cost[m]["steps"] is None:
                    continue
                ratio = f"{cost[m]['steps'] / omp:.2f}x" if omp else "–"
                self.lines.append(("| " + group + " " if group else "") + f"| {m} | {fmt(cost[m]['steps'], 0)} | "
                                  f"{fmt(cost[m]['finetunings'], 1)} | {fmt(cost[m]['wall'], 1)} | {ratio} |")
        if any(r.get("reused_dense") for r in self.tables.rows):
            self.lines += ["", "OMP/IMP cells marked `reused_dense` loaded the finished unpruned fine-tune instead of "
                               "repeating it; its steps and wall time are included in their cost above."]
        if any(is_multilingual(m) for m in methods):
            self.lines += ["", "`parp-multi` is one run over all languages (`parp-multi-N`: with N updates); its cost "
                               "is that of the whole run."]
        self.lines.append("")


    def section_equal_budget(self) -> None:
        groups = self.tables.equal_budget(self.tables.rows + self.budget_rows)
        label = "PER" if self.tables.error_metrics == ("per",) else "CER"
        self.lines += ["## PARP and OMP at equal budgets", "",
                       "The same grid run again with other step budgets; every row is grouped by its total "
                       "fine-tuning updates (OMP's include its dense fine-tuning). So PARP with twice the updates "
                       "faces OMP at OMP's cost, and OMP with its fine-tuning split in two faces PARP at PARP's.", "",
                       f"| language | target | method | total updates | {label} | seeds |", "|---|---|---|---|---|---|"]
        budget_sparsities = {r["sparsity_target"] for r in self.budget_rows}
        for (language, s, method, steps), values in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                          kv[0][3], kv[0][2])):
            if s in budget_sparsities:
                self.lines.append(f"| {language} | {s:g} | {method} | {steps} | {fmt_spread(values)} | "
                                  f"{len(values)} |")
        self.lines.append("")
        self.lines += [equal_budget_item(claim) for claim in self.tables.claim_equal_budget(self.budget_rows)]
        self.lines.append("")

    def section_method_masks(self) -> None:
        data = self.tables.method_mask_overlap()
        if not data:
            return
        self.lines += ["## Masks of the methods", "",
                       "IoU of the pruned sets of two final masks of one language and sparsity: two methods (same "
                       "seed, mean over seeds), one method across seeds, and each method with the magnitude mask of "
                       "the pretrained weights. Random masks at sparsity s give s/(2-s).", "",
                       "| language | target | pair | IoU |", "|---|---|---|---|"]
        for (language, s), info in sorted(data.items()):
            for (a, b), ious in info["pairs"].items():
                self.lines.append(f"| {language} | {s:g} | {a} vs {b} | {fmt_spread(ious)} |")
            for m, iou in info["across_seeds"].items():
                self.lines.append(f"| {language} | {s:g} | {m}, seed vs seed | {fmt(iou)} |")
            for m, iou in info["pretrained"].items():
                if iou is not None:
                    self.lines.append(f"| {language} | {s:g} | {m} vs pretrained | {fmt(iou)} |")
            self.lines.append(f"| {language} | {s:g} | random vs random | {info['random']:.3f} |")
        self.lines.append("")

    def section_per_layer(self) -> None:
        data = self.tables.per_layer_sparsity()
        if not data:
            return
        self.lines += ["## Per-layer sparsity of the final masks", "",
                       "One figure per target sparsity, one panel per method: encoder layers (rows) x tensor types "
                       "(columns), coloured by the sparsity minus the target (red: pruned more than the target, "
                       "blue: less; white: exactly the target, as uniform pruning would give). Numbers are the "
                       "sparsities themselves, means over languages and seeds.", ""]
        for s in sorted({sp for _, sp in data}):
            panels = {m: v for (m, sp), v in sorted(data.items(), key=lambda kv: order_methods([kv[0][0]])) if sp == s}
            name = self.save(per_layer_figure(panels, s), f"per_layer_sparsity_s{s:g}.png")
            self.lines += [f"![per-layer sparsity at target {s:g}]({name})", ""]
        layers = sorted({k[0] for v in data.values() for k in v}, key=layer_key)
        self.lines += ["| method | target | " + " | ".join(layers) + " |", "|---|---|" + "---|" * len(layers)]
        for (method, s), values in sorted(data.items(), key=lambda kv: (kv[0][1], order_methods([kv[0][0]]))):
            by_layer = {layer: mean(v for (l2, _), v in values.items() if l2 == layer) for layer in layers}
            self.lines.append(f"| {method} | {s:g} | " + " | ".join(fmt(by_layer[k]) for k in layers) + " |")
        self.lines += ["", "Global magnitude pruning lets layers differ; the table gives each layer's mean over its "
                           "tensor types.", ""]


    def section_overlap(self) -> None:
        if not self.tables.overlap:
            self.lines += ["## Mask overlap across languages", "",
                           "Only one language has masks, so cross-language overlap cannot be measured.", ""]
            return
        self.lines += ["## Mask overlap across languages", "",
                       "IoU of the pruned sets of the final masks of two languages (same method, sparsity, seed). "
                       "Independent random masks at sparsity s give s/(2-s); 'random (layer-matched)' uses the "
                       "masks' own per-tensor sparsities. Every mask starts from the same pretrained weights, so part of any "
                       "overlap comes from that shared start: random masks are the floor, not the whole explanation.",
                       "",
                       "'Each vs pretrained' is the mean IoU of each language's mask with the magnitude mask of the "
                       "pretrained weights at the same sparsity: how close each mask stays to the shared start.", "",
                       "'Two seeds, one language' is the IoU of two seeds' masks of the same language (mean ± std "
                       "over the languages with two): the overlap training noise alone leaves, the level two "
                       "languages' masks would reach if the languages themselves made no difference.", "",
                       "| method | target | mean IoU across languages | two seeds, one language | each vs pretrained | "
                       "random s/(2-s) | random (layer-matched) |", "|---|---|---|---|---|---|---|"]
        seeds = {(p.subject, p.figures["sparsity"]): p.figures for p in self.tables.claim_overlap().parts}
        for (method, s), info in sorted(self.tables.overlap.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            f = seeds.get((method, s), {})
            across = (f"{f['across_seeds']:.3f}" + (f" ± {f['across_seeds_sd']:.3f}" if f["seed_languages"] > 1 else "")
                      if f.get("across_seeds") is not None else "–")
            self.lines.append(f"| {method} | {s:g} | {info['mean']:.3f} | {across} | {fmt(info.get('pretrained'))} | "
                              f"{info['random']:.3f} | {fmt(info['random_matched'])} |")
        self.lines.append("")
        sources = sorted({(r["language"], r["extra_from"]) for r in self.tables.extra_rows})
        if sources:
            self.lines += ["Masks of other sweeps join these matrices as languages (`--extra_masks`; their error "
                           "rates are not in this report): " + ", ".join(f"{n} from `{f}`" for n, f in sources)
                           + ". 'Each vs pretrained' above is this sweep's own languages only.", ""]
        for (method, s), info in sorted(self.tables.overlap.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            fig = iou_heatmap(info["matrix"], info["languages"],
                              f"{method} s={s:g}: IoU of pruned sets\n(random masks: {info['random']:.2f})",
                              random=info["random"])
            name = self.save(fig, f"mask_iou_{method}_s{s:g}.png")
            self.lines += [f"![{method} at {s:g}: language x language mask IoU]({name})", ""]

    def section_multilingual(self) -> None:
        runs = self.tables.multilingual_runs()
        if not runs:
            return
        steps = {m: self.tables.mean("finetune_steps", method=m) for m in runs}
        own_steps = self.tables.mean("finetune_steps", method="parp")
        self.lines += ["## One multilingual subnetwork", "",
                       "PARP run once on the union of all languages, scored on each language's validation split, "
                       f"next to each language's own PARP model ({fmt(own_steps, 0)} updates on its own data). "
                       + ", ".join(f"`{m}`: {fmt(steps[m], 0)} updates" for m in runs) + ".", "",
                       "| language | target | " + "".join(f"{e.upper()} own PARP | " + "".join(
                           f"{e.upper()} {m} | " for m in runs) for e in self.tables.error_metrics)
                       + "".join(f"IoU {m} with own PARP mask | " for m in runs).rstrip(),
                       "|---|---|" + "---|" * ((1 + len(runs)) * len(self.tables.error_metrics) + len(runs))]
        for language in self.tables.languages:
            for s in sorted({sp for m in runs for sp in self.tables.sparsities(m, language)}):
                where = dict(language=language, sparsity_target=s)
                self.lines.append(
                    f"| {language} | {s:g} | "
                    + "".join(f"{fmt(self.tables.mean(e, method='parp', **where))} | " + "".join(
                        f"{fmt(self.tables.mean(e, method=m, **where))} | " for m in runs)
                      for e in self.tables.error_metrics)
                    + "".join(f"{fmt(self.tables.mean('iou_with_language_mask', method=m, **where))} | "
                              for m in runs).rstrip())
        self.lines.append("")

    def section_layer_overlap(self) -> None:
        figures = []
        for s in sorted({sp for _, sp in self.tables.overlap}):
            summaries = {}
            for method in sorted({m for m, sp in self.tables.overlap if sp == s}, key=lambda m: order_methods([m])):
                summary = layer_iou_summary(self.tables.masks_by_language(method, s))
                if summary is not None:
                    summaries[method] = summary
            if summaries:
                figures.append((s, summaries, self.save(layer_iou_figure(summaries, s), f"layer_iou_s{s:g}.png")))
        if not figures:
            return
        self.lines += ["## Which layers the languages share", "",
                       "Per encoder layer, the IoU of the pruned sets of two languages' final masks (same method, "
                       "sparsity and seed; mean over seeds), summarised over every pair of languages: mean (line), "
                       "min to max (band), and the IoU that random masks with the same per-tensor sparsities would "
                       "reach in that layer (dashed). A layer near its random level is pruned language-specifically, "
                       "one far above it is shared. Dotted: two seeds of one language (mean over the languages with "
                       "two), what training noise alone leaves shared; languages below it differ beyond that noise.",
                       ""]
        for s, summaries, name in figures:
            self.lines += [f"![per-layer IoU across languages at {s:g}]({name})", "",
                           "| method | target | layer | mean IoU | min | max | random masks | two seeds, one language |",
                           "|---|---|---|---|---|---|---|---|"]
            for method, summary in summaries.items():
                for i, layer in enumerate(summary["layers"]):
                    seeds = fmt(summary["seeds"][i]) if summary.get("seeds") else "–"
                    self.lines.append(f"| {method} | {s:g} | {layer} | {summary['mean'][i]:.3f} | "
                                      f"{summary['min'][i]:.3f} | {summary['max'][i]:.3f} | "
                                      f"{summary['random'][i]:.3f} | {seeds} |")
            self.lines.append("")

    def section_pretrained_overlap(self) -> None:
        rows = [r for r in self.tables.rows + self.tables.extra_rows
                if r.get("iou_with_pretrained_mask") is not None and r["method"] != "none"
                and not is_multilingual(r["method"])]
        if not rows:
            return
        self.lines += ["## Overlap with the pretrained magnitude mask", "",
                       "Each language's final mask against the magnitude mask of the pretrained weights at the same "
                       "sparsity (IoU of the pruned sets, recorded when the cell ran; mean ± std over seeds), next "
                       "to its mean IoU with the other languages' masks. Where the two are alike, the shared "
                       "pretrained start explains the cross-language overlap.", "",
                       "| language | method | target | IoU with pretrained mask | mean IoU with other languages |",
                       "|---|---|---|---|---|"]
        keys = sorted({(r["method"], r["sparsity_target"], r["language"]) for r in rows},
                      key=lambda k: (k[1], order_methods([k[0]]), k[2]))
        for method, s, language in keys:
            values = [r["iou_with_pretrained_mask"] for r in rows
                      if (r["method"], r["sparsity_target"], r["language"]) == (method, s, language)]
            info = self.tables.overlap.get((method, s))
            others = None
            if info and language in info["languages"]:
                i = info["languages"].index(language)
                others = mean(v for j, v in enumerate(info["matrix"][i]) if j != i)
            extra = " (extra)" if any(r.get("extra_from") for r in rows if r["language"] == language) else ""
            self.lines.append(f"| {language}{extra} | {method} | {s:g} | {fmt_spread(values)} | {fmt(others)} |")
        self.lines.append("")

    def section_transfer(self) -> None:
        metric = self.tables.error_metrics[-1]  # PER for phone targets, CER otherwise
        pairs = transfer_pairs(self.tables.transfer_rows + self.tables.rows, metric)
        if not pairs:
            return
        label = metric.upper()
        self.lines += ["## Cross-language mask transfer (PARP-P')", "",
                       f"For each ordered pair (A, B): PARP on B starting from A's final OMP mask (`{TRANSFER}`, "
                       f"the paper's PARP-P'), and from A's random twin (`{TRANSFER_RANDOM}`: a random mask that "
                       "prunes as many weights in every tensor as A's mask, so the per-layer sparsity is A's and "
                       "only the choice of weights is lost), each against PARP on B with its own start (the "
                       f"pretrained weights' magnitude mask). Differences of {label} means over seeds ± the larger "
                       "standard deviation across seeds of the two sides; positive = B does worse. A difference is "
                       "called only where it exceeds that spread ('not separable' otherwise).", ""]
        for s in sorted({p.sparsity for p in pairs}):
            panels = {"mask of A − own start": transfer_grid(pairs, s, "transfer"),
                      "random twin of A − own start": transfer_grid(pairs, s, "random")}
            name = self.save(transfer_heatmaps(panels, metric, f"{label}(B | start) − {label}(B | own start), "
                                               f"target sparsity {s:g}, mean over seeds (* beyond the seed spread)"),
                             f"transfer_s{s:g}.png")
            self.lines += [f"![transfer matrix at {s:g}]({name})", "",
                           f"Donors and receivers at {s:g}: per language, the mean of {label}(B | mask of A) − "
                           f"{label}(B | own start) over the pairs where it gave its mask (row mean) and where it "
                           "received one (column mean).", "",
                           "| language | as A: mean | pairs | as B: mean | pairs |", "|---|---|---|---|---|"]
            for language, (given, n_given, received, n_received) in transfer_margins(pairs, s).items():
                signed = ["–" if v is None else f"{v:+.3f}" for v in (given, received)]
                self.lines.append(f"| {language} | {signed[0]} | {n_given} | {signed[1]} | {n_received} |")
            self.lines.append("")
        self.lines += [f"| A (mask from) | B | target | {label} own | mask A − own | random twin − own | "
                       "mask A − random twin | mask A vs own |", "|---|---|---|---|---|---|---|---|"]
        for p in pairs:
            self.lines.append(f"| {p.source} | {p.target} | {p.sparsity:g} | {fmt(p.own)} | "
                              f"{fmt(p.transfer)} | {fmt(p.random)} | {fmt(p.versus_random)} | {called(p.transfer)} |")
        self.lines += ["", f"**Verdict.** {render_claim(transfer_claim(pairs, metric))}", ""]

    def section_reprunes(self) -> None:
        histories, without = reprune_histories(self.tables.rows + self.tables.transfer_rows, self.tables.base)
        if not histories:
            if without:
                self.lines += ["## How far PARP's masks move", "",
                               f"{without} PARP cell(s) have no IoU with their starting mask on disk (a record of an "
                               "older parp, or a cell folder that is gone: a committed copy of its row), so the "
                               "adjustment's movement cannot be drawn.", ""]
            return
        starts = {"parp": "own start", TRANSFER: "from A's OMP mask", TRANSFER_RANDOM: "from A's random twin"}
        keys = sorted(histories, key=lambda k: (k[1], order_methods([k[0]])))
        panels = {f"{method} s={s:g} ({starts.get(method, method)})": histories[(method, s)] for method, s in keys}
        name = self.save(reprune_history_figure(panels), "reprune_history.png")
        self.lines += ["## How far PARP's masks move", "",
                       "IoU of the pruned sets of each re-prune's mask with the mask the run started from (the "
                       "pretrained weights' magnitude mask; for transfer cells A's OMP mask or its random twin), "
                       "against the update step; one line per language (B for transfer cells), mean over seeds "
                       "and sources. 1.0 means the adjustment has not moved the mask.", "",
                       f"![re-prune IoU with the starting mask]({name})", "",
                       "| method | target | start | final IoU with start, mean over languages | lowest language |",
                       "|---|---|---|---|---|"]
        for method, s in keys:
            finals = {language: points[-1][1] for language, points in histories[(method, s)].items()}
            lowest = min(finals, key=finals.get)
            self.lines.append(f"| {method} | {s:g} | {starts.get(method, method)} | {mean(finals.values()):.3f} | "
                              f"{lowest} {finals[lowest]:.3f} |")
        if without:
            self.lines += ["", f"{without} more cell(s) have no IoU with their start on disk (an older parp's record, "
                               "or a cell folder that is gone) and are left out."]
        self.lines.append("")

    # ------------------------------------------------------------------ claims
    def section_claims(self) -> None:
        self.lines += ["## Do the paper's claims hold here?", ""]
        unit_metric = self.tables.error_metrics[-1]  # CER for characters, PER for phones
        cers = [r[unit_metric] for r in self.tables.rows if r.get(unit_metric) is not None]
        if cers and min(cers) >= 0.99:
            self.lines += [f"**No model learned to emit text (every {unit_metric.upper()} ≥ 0.99)**: the fine-tuning "
                           "schedule is too short for this data and encoder, so the error comparisons below say nothing about the "
                           "methods; only cost and mask statistics are informative.", ""]
        self.lines += [*map(claim_item, self.tables.claims()), "",
                       f"These statements describe this sweep only ({len(self.tables.seeds)} seed(s)). "
                       "A claim is called "
                       "held or failed only where a difference exceeds the spread across seeds (the larger standard "
                       "deviation of the two sides); otherwise it is 'not separable'.", ""]


CELL_KEY = ("language", "train_hours", "method", "mask_from", "sparsity_target", "seed", "finetune_steps")


def merged_results(sources: str | Path | list) -> tuple[list[dict[str, Any]], Path]:
    """The rows of one or more results of the same grid and the folder their paths are relative to (the last
    source's): a later source's row replaces an earlier one's for the same cell; an earlier source's mask and cell
    paths are resolved against its own folder (a mask file that is gone is left out of the mask analyses)."""
    paths = [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
    if not paths:
        raise ConfigError("--results: name at least one results file or sweep folder")
    folders = [p if p.is_dir() else p.parent for p in paths]
    base = folders[-1]
    merged: dict[tuple, dict[str, Any]] = {}
    for path, folder in zip(paths, folders):
        for row in read_results(path):
            if folder.resolve() != base.resolve():
                for key in ("mask", "cell"):
                    if row.get(key) and not Path(row[key]).is_absolute():
                        row[key] = os.path.relpath(folder / row[key], base)
            merged[tuple(row.get(k) for k in CELL_KEY)] = row
    return list(merged.values()), base


def build_report(results: str | Path | list, output_dir: str | Path | None = None,
                 budget_results: list[str | Path] | tuple = (), extra_masks: list[str] | None = None,
                 metric: str = "auto") -> Path:
    """Write ``report.md`` and its PNG plots; returns the report's path. ``extra_masks``: ``NAME=SWEEP_FOLDER``
    items whose masks join the mask analyses (``parp.reports.extra_masks``); ``metric``: see ReportArguments."""
    rows, base = merged_results(results)
    budget_rows = [row for extra in budget_results for row in read_results(extra)]
    extra = extra_mask_rows(extra_masks, base, rows)
    tables = Tables(rows, base, extra, metric=metric)
    return Report(tables, Path(output_dir) if output_dir else base, budget_rows).build()


def run_report(args: ReportArguments) -> Path:
    path = build_report(args.results, args.output_dir, args.budget_results, args.extra_masks, args.metric)
    print(f"report: {path}")
    return path

