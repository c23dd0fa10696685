"""The evaluation's figures (matplotlib, Agg): confusion matrix, few-shot curves, robustness bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_plot(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str, path: Path) -> Path:
    plt = _plt()
    m = np.asarray(matrix, dtype=np.float64)
    norm = m / np.clip(m.sum(1, keepdims=True), 1, None)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black"
            )
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fewshot_plot(curves: dict[str, list[tuple[int, float, float]]], path: Path) -> Path:
    """``curves[encoder] = [(shots, mean, std), ...]`` of balanced accuracy."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, pts in curves.items():
        x, m, s = (np.array(v) for v in zip(*pts, strict=True))
        ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training patches per class")
    ax.set_ylabel("balanced accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def robustness_plot(drops: dict[str, dict[str, tuple[float, float]]], path: Path) -> Path:
    """``drops[encoder][shift] = (mean, std)`` drop in balanced accuracy."""
    plt = _plt()
    encoders = list(drops)
    shifts = list(next(iter(drops.values())))
    width = 0.8 / max(1, len(encoders))
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(shifts), 3.4))
    for k, name in enumerate(encoders):
        means = [drops[name][s][0] for s in shifts]
        stds = [drops[name][s][1] for s in shifts]
        ax.bar(np.arange(len(shifts)) + k * width, means, width, yerr=stds, capsize=2, label=name)
    ax.set_xticks(np.arange(len(shifts)) + width * (len(encoders) - 1) / 2, shifts, rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("drop in balanced accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
