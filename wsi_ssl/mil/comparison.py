"""``metrics.json``'s ``comparison`` object: the run's model beside simpler models on the same folds.

"Does the slide add anything to the clinical data?" is answered by fitting, on exactly the folds
of the run, a covariates-only model, a histology-only model (``model.fusion: none``) and the
fused model, and by the paired bootstrap of their difference. Other baselines (the pooled
linear one) add their entry here too, so the object is built in one place and has one shape::

    "comparison": {
      "metric": "c_index", "label": "C-index",          # the task's headline metric
      "covariates_only": {<metric>: {value, ci_low, ci_high, n_boot}, ...},   # task.metrics(...)
      "histology_only":  {...}, "fused": {...}, "pooled_linear": {...},
      "gain_vs_covariates": {"value", "ci_low", "ci_high", "n_boot", "p_le_0"},  # fused - other
      "gain_vs_histology":  {...}
    }

Each entry is the task's out-of-fold metrics (``Task.metrics``, the usual ``{value, ci_low,
ci_high}`` form). A gain is the paired bootstrap of the headline score's difference: each resample
draws the same bags for both models, so the CI reflects the models' difference, not the cohort's
noise twice; ``p_le_0`` is the share of resamples where the fused model does no better.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from wsi_ssl.mil.tasks import get_task

COMPARISON = "comparison"


def comparison(metrics: dict[str, Any], task_kind: str) -> dict[str, Any]:
    """The ``comparison`` object of ``metrics`` (created, naming the headline metric, if absent)."""
    task = get_task(task_kind)
    return metrics.setdefault(COMPARISON, {"metric": task.headline[0], "label": task.headline[1]})


def add_entry(
    metrics: dict[str, Any],
    task_kind: str,
    name: str,
    target: np.ndarray,
    pred: dict[str, np.ndarray],
    n_boot: int,
    ci: float,
    times: np.ndarray | None,
    seed: int,
) -> dict[str, Any]:
    """File ``name``'s out-of-fold metrics (``pred`` aligned with ``target``) under ``comparison``."""
    task = get_task(task_kind)
    entry = task.metrics(target, pred, n_boot, ci, times, seed, train_target=target)
    comparison(metrics, task_kind)[name] = entry
    return entry


def paired_gain(
    task_kind: str, frame_a: pd.DataFrame, frame_b: pd.DataFrame, n_boot: int, ci: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """score(a) - score(b) on the same bags, with a paired percentile-bootstrap CI.

    ``frame_a`` / ``frame_b``: row-aligned prediction frames (``oof_predictions.csv`` rows: the
    target and prediction columns). The score is the task's per-slice figure (``Task.fold_metric``:
    Harrell's C, AUROC, Pearson r), which needs no fitted censoring distribution, so every
    resample is cheap and both models are scored on exactly the same draw.
    """
    task = get_task(task_kind)
    fa, fb = frame_a.reset_index(drop=True), frame_b.reset_index(drop=True)
    if len(fa) != len(fb):
        raise ValueError(f"paired_gain: {len(fa)} rows against {len(fb)}; the frames must be row-aligned")
    value = task.fold_metric(fa) - task.fold_metric(fb)
    rng = np.random.default_rng(seed)
    draws: list[float] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for _ in range(n_boot):
            idx = rng.integers(0, len(fa), len(fa))
            try:
                d = task.fold_metric(fa.iloc[idx]) - task.fold_metric(fb.iloc[idx])
            except (ValueError, ZeroDivisionError, IndexError):
                continue
            if np.isfinite(d):
                draws.append(float(d))
    d_arr = np.asarray(draws)
    nan = float("nan")
    lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    return {
        "value": float(value),
        "ci_low": float(np.percentile(d_arr, lo)) if len(d_arr) else nan,
        "ci_high": float(np.percentile(d_arr, hi)) if len(d_arr) else nan,
        "n_boot": int(len(d_arr)),
        "p_le_0": float(np.mean(d_arr <= 0)) if len(d_arr) else nan,
        "score": task.fold_metric_label,
    }


def add_gain(
    metrics: dict[str, Any],
    task_kind: str,
    name: str,
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    n_boot: int,
    ci: float,
    seed: int,
) -> dict[str, Any]:
    """File ``paired_gain(a - b)`` under ``comparison[name]`` (e.g. ``gain_vs_covariates``)."""
    gain = paired_gain(task_kind, frame_a, frame_b, n_boot, ci, seed)
    comparison(metrics, task_kind)[name] = gain
    return gain
