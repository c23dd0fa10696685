"""The pooled linear baseline: mean and max of each bag's features, then a linear model per fold.

The attention-MIL literature measures itself against this (Ilse et al. 2018 quote a mean+max
pooled logistic regression at 0.849 / 0.804 on MUSK1 / MUSK2), and an attention model that does
not beat it on a user's own cohort is a finding the user should see in the run, not later. So
every ``wsi-ssl mil train`` fits it on exactly the run's outer folds (its ``fold`` column):

- features: per bag, the mean and the max over its instances of every feature ([2 D]);
- standardised with the training fold's mean and std only (scikit-learn's ``StandardScaler``
  fitted on the training rows), so no statistic of a held-out bag reaches its fit;
- the task kind's linear model (:mod:`.linear`), trained on the whole outer training fold (no
  early stopping, so no inner validation split is needed), predicts the held-out fold;
- scored by the task's own metric code (``Task.metrics`` through
  :func:`wsi_ssl.mil.comparison.add_entry`) and filed as ``comparison.pooled_linear``, with the
  paired bootstrap of the MIL model's headline score minus the baseline's as
  ``comparison.gain_vs_pooled_linear``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.baselines.registry import LinearSettings, get_linear
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import CVResult, prediction_frame

log = logging.getLogger(__name__)

NAME = "pooled_linear"


def pool_features(bags: Sequence[Bag]) -> np.ndarray:
    """[n_bags, 2 D] float64: each bag's per-feature mean, then its per-feature max."""
    return np.stack(
        [
            np.concatenate([b.features.mean(axis=0, dtype=np.float64), b.features.max(axis=0).astype(np.float64)])
            for b in bags
        ]
    )


def pooled_linear_oof(
    task_kind: str,
    x: np.ndarray,
    y: np.ndarray,
    fold_of: np.ndarray,
    n_classes: int = 0,
    times: np.ndarray | None = None,
    settings: LinearSettings | None = None,
) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of the linear model of ``task_kind`` on pooled rows ``x``.

    ``fold_of``: the outer fold of each row; each fold is predicted by a model fitted on all
    other rows, after standardisation fitted on those rows only.
    """
    from sklearn.preprocessing import StandardScaler

    fitter = get_linear(task_kind)
    settings = settings or LinearSettings()
    oof: dict[str, np.ndarray] = {}
    for k in sorted(set(np.asarray(fold_of).tolist())):
        test = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        scaler = StandardScaler().fit(x[train])  # training fold only
        pred = fitter(scaler.transform(x[train]), y[train], scaler.transform(x[test]), n_classes, times, settings)
        for name, v in pred.items():
            oof.setdefault(name, np.zeros((len(x),) + np.shape(v)[1:], dtype=np.float64))[test] = v
    return oof


def add_pooled_linear(cfg: MilConfig, meta: dict[str, Any], bags: Sequence[Bag], result: CVResult) -> dict[str, Any]:
    """Fit the baseline on the outer folds of ``result`` (its ``fold`` column) and file it under
    ``result.metrics["comparison"]``; returns the entry.

    A baseline that cannot be fitted (a degenerate fold) is recorded with its reason under
    ``error`` and never stops the run: the MIL model's results are already written.
    """
    from wsi_ssl.mil.comparison import add_entry, add_gain, comparison
    from wsi_ssl.mil.tasks import get_task

    task = get_task(meta["task"])
    metrics, ev = result.metrics, cfg.eval
    y = np.stack([np.asarray(b.target) for b in bags])
    fold_of = result.oof["fold"].to_numpy()
    times = task.eval_times(y)
    settings = LinearSettings(c=ev.pooled_linear.c, alpha=ev.pooled_linear.alpha)
    try:
        x = pool_features(bags)
        oof = pooled_linear_oof(task.kind, x, y, fold_of, len(meta.get("classes") or []), times, settings)
        entry = add_entry(metrics, task.kind, NAME, y, oof, ev.bootstrap, ev.ci, times, cfg.train.seed)
        frame = prediction_frame(meta, bags, oof, times, fold_of)
        add_gain(metrics, task.kind, f"gain_vs_{NAME}", result.oof, frame, ev.bootstrap, ev.ci, cfg.train.seed)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        log.warning("pooled linear baseline failed: %s", exc)
        entry = {"error": str(exc)}
        comparison(metrics, task.kind)[NAME] = entry
    return entry


def baseline_line(metrics: dict[str, Any]) -> str | None:
    """``pooled linear baseline: auroc 0.85 [0.78, 0.91]`` for the run's summary, or None."""
    comp = metrics.get("comparison", {})
    entry, key = comp.get(NAME), comp.get("metric")
    if not entry or key not in entry:
        return None
    m = entry[key]
    return (
        f"pooled linear baseline (mean+max, same folds): {key} {m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
    )
