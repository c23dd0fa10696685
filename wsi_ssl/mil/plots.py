"""PNG plots of cross-validated predictions: ROC curves, Kaplan-Meier curves of predicted risk
groups with the log-rank p-value, and predicted-vs-true scatter for regression.

Risk groups split at the median predicted risk of the plotted set (a fixed rule, not tuned).
Which plots a run gets is up to its task kind (``Task.plots`` in :mod:`wsi_ssl.mil.tasks`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402
from sksurv.compare import compare_survival  # noqa: E402
from sksurv.nonparametric import kaplan_meier_estimator  # noqa: E402
from sksurv.util import Surv  # noqa: E402

from wsi_ssl.stores.atomic import atomic_output  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_plot(df: pd.DataFrame, classes: list[str], path: str | Path, title: str = "ROC (out-of-fold)") -> Path:
    """One curve for binary tasks (positive = the second class), one-vs-rest per class otherwise."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    shown = classes[1:] if len(classes) == 2 else classes
    for c in shown:
        y = (df["target"].astype(str) == c).astype(int).to_numpy()
        if y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, df[f"prob_{c}"])
        ax.plot(fpr, tpr, label=f"{c} (AUC {roc_auc_score(y, df[f'prob_{c}']):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return _save(fig, Path(path))


def km_plot(
    df: pd.DataFrame, path: str | Path, title: str = "Kaplan-Meier by predicted risk (out-of-fold)"
) -> tuple[Path, float]:
    """KM curves of the low- and high-risk halves; returns the path and the log-rank p-value."""
    high = (df["risk"] > df["risk"].median()).to_numpy()
    time, event = df["time"].to_numpy(float), df["event"].to_numpy().astype(bool)
    p = float("nan")
    if high.any() and (~high).any():
        _, p = compare_survival(Surv.from_arrays(event=event, time=time), high.astype(int))
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, sel in (("low risk", ~high), ("high risk", high)):
        if sel.any():
            t, s = kaplan_meier_estimator(event[sel], time[sel])
            t, s = np.r_[0.0, t], np.r_[1.0, s]  # curves start at S(0) = 1
            ax.step(t, s, where="post", label=f"{name} (n={int(sel.sum())})")
    ax.set(xlabel="time", ylabel="survival probability", ylim=(0, 1.02), title=title)
    ax.text(0.02, 0.04, f"log-rank p = {p:.2g}", transform=ax.transAxes)
    ax.legend(loc="upper right")
    return _save(fig, Path(path)), float(p)


def regression_plot(df: pd.DataFrame, path: str | Path, title: str = "predicted vs true (out-of-fold)") -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(df["target"], df["pred"], s=10, alpha=0.7)
    lo, hi = float(np.nanmin(df[["target", "pred"]].to_numpy())), float(np.nanmax(df[["target", "pred"]].to_numpy()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="true", ylabel="predicted", title=title)
    return _save(fig, Path(path))
