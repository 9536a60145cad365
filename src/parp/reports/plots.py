"""The report's figures (matplotlib, Agg): error and cost plots, per-layer sparsity heatmaps, IoU heatmaps."""

from __future__ import annotations

import math

import numpy as np

from .tables import _TENSOR_LABELS, _layer_key


def _plt():
    import matplotlib  # lazy: heavy, and tables/report must import without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def per_layer_figure(panels: dict[str, dict[tuple[str, str], float]], target: float):
    """One heatmap per method: layers x tensor types, coloured by sparsity minus ``target`` (shared scale)."""
    from matplotlib.colors import TwoSlopeNorm  # lazy, as in _plt

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
