"""The figures of a pretraining run (``loss_curve.png``) and of an SSL-gain comparison (``downstream.png``)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib  # lazy: heavy, needed for these figures only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(history: list[dict], path: Path, title: str) -> None:
    """Training loss (and validation loss where measured) against updates."""
    plt = _pyplot()
    train_points = [(h["step"], h["loss"]) for h in history if "loss" in h]
    valid_points = [(h["step"], h["valid_loss"]) for h in history if "valid_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train_points:
        ax.plot(*zip(*train_points), label="train loss", lw=1)
    if valid_points:
        ax.plot(*zip(*valid_points), "o-", label="validation loss (masked frames)", ms=3)
    ax.set_xlabel("update")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(curves: dict, path: Path) -> None:
    plt = _pyplot()
    fig, (ax_cer, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    for arm, curve in curves.items():
        if curve["valid_cer"]:
            ax_cer.plot(*zip(*curve["valid_cer"]), marker="o", label=arm)
        if curve["train_loss"]:
            ax_loss.plot(*zip(*curve["train_loss"]), label=arm)
    ax_cer.set(xlabel="fine-tuning update", ylabel="validation CER", title="Mboshi validation CER")
    ax_loss.set(xlabel="fine-tuning update", ylabel="CTC loss", title="training loss", yscale="log")
    for ax in (ax_cer, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
