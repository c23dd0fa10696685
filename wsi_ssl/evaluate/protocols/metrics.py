"""Scores of a classifier on the test split (scikit-learn's definitions) and their spread over seeds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score


def scores(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """Balanced accuracy (the headline, as eva reports), macro-F1 and AUROC (one-vs-rest macro)."""
    pred = proba.argmax(1)
    out = {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", labels=np.arange(n_classes), zero_division=0)),
    }
    present = np.unique(y_true)
    if len(present) < 2:
        out["auroc"] = float("nan")
    elif n_classes == 2:
        out["auroc"] = float(roc_auc_score(y_true, proba[:, 1]))
    else:
        p = proba[:, present] / np.clip(proba[:, present].sum(1, keepdims=True), 1e-12, None)
        out["auroc"] = float(roc_auc_score(y_true, p, multi_class="ovr", average="macro", labels=present))
    return out


def spread(per_seed: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std"}}`` over seeds (std with ddof=1, 0 for one seed)."""
    keys = per_seed[0].keys() if per_seed else []
    out = {}
    for k in keys:
        v = np.array([s[k] for s in per_seed], dtype=np.float64)
        out[k] = {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0}
    return out
