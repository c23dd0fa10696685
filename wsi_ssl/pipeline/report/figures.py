"""Images and small computations for the report: inlined PNG/JPEG, charts, per-fold CIs.

Images already written by the stages (QC thumbnails, pretraining curves, ROC and KM plots,
heatmaps) are inlined as they are, except QC thumbnails, which are shrunk and re-encoded as
JPEG so that a cohort of hundreds of slides still gives a report of a few megabytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def data_uri(path: str | Path | None) -> str | None:
    """A ``data:`` URI for an image file, or None when the file is missing (the report says so)."""
    if path is None or not Path(path).is_file():
        return None
    p = Path(path)
    return f"data:{MIME.get(p.suffix.lower(), 'image/png')};base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def thumbnail_uri(path: str | Path, max_px: int, quality: int = 82) -> str | None:
    """A shrunk JPEG of an image (for QC thumbnails: 1600 px PNGs would make the report huge)."""
    from PIL import Image

    if not Path(path).is_file():
        return None
    with Image.open(path) as opened:
        im = opened.convert("RGB")
        im.thumbnail((max_px, max_px))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fig_uri(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def tiles_histogram(n_tiles: Sequence[int]) -> str:
    """Histogram of tiles per slide: a glance at whether tissue detection behaved across the cohort."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.hist(list(n_tiles), bins=min(20, max(5, len(n_tiles) // 2)), color="#4f7cac", edgecolor="white")
    ax.set(xlabel="tiles per slide", ylabel="slides", title="Tiles per slide")
    return _fig_uri(fig)


def comparison_chart(rows: Sequence[dict[str, Any]], kinds: Sequence[str]) -> str:
    """Bars with 95% CIs: each task's headline metric for each encoder, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(rows), 3.2))
    width = 0.8 / max(1, len(kinds))
    colours = {"pretrained": "#1f77b4", "random": "#b0b7c3"}
    for j, kind in enumerate(kinds):
        vals = [r.get(kind) or {} for r in rows]
        v = np.array([m.get("value", np.nan) for m in vals], dtype=float)
        lo = np.array([m.get("ci_low", np.nan) for m in vals], dtype=float)
        hi = np.array([m.get("ci_high", np.nan) for m in vals], dtype=float)
        x = np.arange(len(rows)) + (j - (len(kinds) - 1) / 2) * width
        err = np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0).clip(min=0)
        ax.bar(x, v, width, yerr=err, capsize=3, label=kind, color=colours.get(kind))
        for xi, vi in zip(x, v):
            if vi == vi:
                ax.text(
                    xi,
                    0.03,
                    f"{vi:.2f}",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="white" if kind == "pretrained" else "black",
                )
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(rows)), [f"{r['task']}\n{r.get('label', '')}" for r in rows])
    ax.set(ylim=(0, 1.05), ylabel="out-of-fold (95% CI)", title="Pretrained vs random encoder")
    ax.legend(loc="lower right", fontsize=8)
    return _fig_uri(fig)


def _fold_metric(df: pd.DataFrame, task: str) -> float:
    from wsi_ssl.mil.tasks.registry import get_task

    return get_task(task).fold_metric(df)


def per_fold_ci(predictions: str | Path, task: str, n_boot: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Per fold of the out-of-fold predictions: n, the headline metric and its bootstrap 95% CI.

    Computed here from ``oof_predictions.csv`` because ``metrics.json`` gives per-fold point
    values only; a fold of a small cohort has a handful of slides, and the width of these
    intervals is the honest answer to how much one fold says.
    """
    df = pd.read_csv(predictions)
    if "fold" not in df.columns:
        return []
    rng = np.random.default_rng(seed)
    out = []
    for fold, part in df.groupby("fold", sort=True):
        part = part.reset_index(drop=True)
        value = _fold_metric(part, task)
        boots = []
        for _ in range(n_boot):
            sample = part.iloc[rng.integers(0, len(part), len(part))]
            m = _fold_metric(sample, task)
            if m == m:
                boots.append(m)
        lo, hi = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))) if boots else (float("nan"),) * 2
        out.append({"fold": int(fold), "n": len(part), "value": value, "ci_low": lo, "ci_high": hi})
    return out
