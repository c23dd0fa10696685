"""The curves PNG written at the end of a run: losses, schedules, RankMe and kNN against step.

It reads the metrics CSVs (one per run segment: a resumed run adds a segment), so it can also be
redrawn at any time from a run dir alone.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

PANELS = (
    ("loss", ("train/loss", "train/dino_loss", "train/ibot_loss", "train/koleo_loss")),
    ("learning rate", ("train/lr",)),
    ("EMA momentum", ("train/momentum",)),
    ("teacher temperature", ("train/teacher_temp",)),
    ("RankMe", ("monitor/rankme_teacher", "monitor/rankme_student")),
    ("kNN accuracy", ("monitor/knn_",)),
)


def read_metrics(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` merged over every segment's metrics.csv, sorted by step."""
    series: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(run_dir).glob("logs/*/metrics.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step = int(float(row.get("step") or 0))
                for key, val in row.items():
                    if key == "step" or val in ("", None):
                        continue
                    try:
                        v = float(val)
                    except ValueError:
                        continue
                    if math.isfinite(v):
                        series.setdefault(key, []).append((step, v))
    return {k: sorted(set(v)) for k, v in series.items()}


def plot_curves(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """Write ``RUN_DIR/curves.png``; returns its path, or None when nothing was logged yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(run_dir)
    if not series:
        return None
    panels = [(title, [k for k in series if any(k.startswith(p) for p in prefixes)]) for title, prefixes in PANELS]
    panels = [(t, keys) for t, keys in panels if keys]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in sorted(keys):
            steps, vals = zip(*series[key])
            ax.plot(steps, vals, label=key.split("/")[-1], marker="o" if len(steps) < 30 else None, ms=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_path = Path(out) if out else Path(run_dir) / "curves.png"
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
