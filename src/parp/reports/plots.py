"""The report's figures (matplotlib, Agg): error and cost plots, per-layer sparsity heatmaps, IoU heatmaps."""

from __future__ import annotations

import math

import numpy as np

from .tables import TENSOR_LABELS, layer_key


def pyplot():
    import matplotlib  # lazy: heavy, and tables/report must import without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def per_layer_figure(panels: dict[str, dict[tuple[str, str], float]], target: float):
    """One heatmap per method: layers x tensor types, coloured by sparsity minus ``target`` (shared scale)."""
    from matplotlib.colors import TwoSlopeNorm  # lazy, as in pyplot

    plt = pyplot()
    layers = sorted({k[0] for v in panels.values() for k in v}, key=layer_key)
    order = list(TENSOR_LABELS.values())
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
    title = f"Sparsity per layer and tensor, target {target:g} (colour: difference from target)"
    fig.suptitle(title if len(grids) > 1 else title.replace(" (", "\n("), fontsize=10)  # one panel: two lines
    fig.colorbar(image, ax=flat[:len(grids)], fraction=0.03, pad=0.02, label="sparsity - target")
    return fig


def iou_heatmap(matrix: list[list[float]], labels: list[str], title: str, random: float | None = None):
    """Language x language IoU; the colour scale spans the off-diagonal cells (the 1.0 diagonal is greyed)
    down to the random-mask IoU when given, marked on the colour bar, so colour reads as "above chance"."""
    plt = pyplot()
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


def transfer_heatmaps(panels: dict[str, tuple[list[str], list[str], list[list[float]], list[list[bool]]]],
                      metric: str, title: str):
    """One heatmap per panel: rows the source language A, columns the target B, colour the error difference
    (red: B does worse than with its own start), one symmetric scale for all panels; grey where not run; a star
    marks a difference beyond the spread across seeds."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    plt = pyplot()
    grids = {name: np.array(grid, dtype=float) for name, (_, _, grid, _) in panels.items()}
    values = np.concatenate([g[~np.isnan(g)] for g in grids.values()] + [np.zeros(1)])
    span = max(float(np.abs(values).max()), 0.005)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    first_sources, first_targets, *_ = next(iter(panels.values()))
    width = 0.75 * len(first_targets) + 1.6
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels) + 1.2, 0.6 * len(first_sources) + 2.0),
                             squeeze=False, layout="constrained")
    image = None
    for ax, (name, (sources, targets, _, separable)) in zip(axes[0], panels.items()):
        grid = grids[name]
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        ax.set_xticks(range(len(targets)), targets)
        ax.set_yticks(range(len(sources)), sources)
        ax.set_xlabel("B (fine-tuned and scored)")
        ax.set_ylabel("A (whose mask B starts from)")
        ax.set_title(name, fontsize=10)
        for i in range(len(sources)):
            for j in range(len(targets)):
                if not np.isnan(grid[i, j]):
                    star = "*" if separable[i][j] else ""
                    ax.text(j, i, f"{grid[i, j]:+.3f}{star}", ha="center", va="center", fontsize=8,
                            color="white" if abs(grid[i, j]) > 0.6 * span else "black")
    fig.colorbar(image, ax=list(axes[0]), fraction=0.04, pad=0.02, label=f"{metric.upper()} difference")
    fig.suptitle(title, fontsize=10)
    return fig


def layer_iou_figure(summaries: dict[str, dict], sparsity: float):
    """Per encoder layer: mean IoU over language pairs (line), min-max over pairs (band), the IoU random masks
    with the same per-tensor sparsities would reach (dashed) and that of two seeds of one language (dotted), one
    colour per method."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.4), layout="constrained")
    for index, (method, summary) in enumerate(summaries.items()):
        colour = f"C{index}"
        xs = [int(layer.split()[1]) for layer in summary["layers"]]
        ax.plot(xs, summary["mean"], marker="o", color=colour, label=f"{method}: mean of {summary['pairs']} pairs")
        ax.fill_between(xs, summary["min"], summary["max"], color=colour, alpha=0.2, label=f"{method}: min-max")
        ax.plot(xs, summary["random"], linestyle="--", color=colour, linewidth=1, label=f"{method}: random masks")
        if summary.get("seeds"):
            ax.plot(xs, summary["seeds"], linestyle=":", marker="x", color=colour, linewidth=1.2,
                    label=f"{method}: two seeds, one language")
        ax.set_xticks(xs)
    ax.set_xlabel("encoder layer")
    ax.set_ylabel("IoU of pruned sets across languages")
    ax.set_title(f"Per-layer mask overlap across languages, target sparsity {sparsity:g}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, ncols=len(summaries), loc="outside lower center")
    return fig


def reprune_history_figure(panels: dict[str, dict[str, list[tuple[int, float]]]]):
    """One panel per (method, sparsity): per language, the IoU of each re-prune's mask with the starting mask
    against the update step; a flat line at 1 means the adjustment never moved the mask."""
    plt = pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    low = min([iou for lines in panels.values() for points in lines.values() for _, iou in points] + [1.0])
    low = max(0.0, low - 0.05)
    for ax, (title, lines) in zip(flat, panels.items()):
        for language, points in lines.items():
            points = [(0, 1.0), *points]  # step 0: the starting mask itself
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=language)
        ax.set_title(title, fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("update step (0: the start)")
        ax.set_ylim(low, 1.01)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncols=2)
    for row in axes:
        row[0].set_ylabel("IoU with the starting mask")
    return fig
