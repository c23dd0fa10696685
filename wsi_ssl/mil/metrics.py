"""Metrics with percentile-bootstrap confidence intervals, from scikit-learn and scikit-survival.

Classification: AUROC (one-vs-rest macro for multi-class), balanced accuracy, F1 (positive class
for binary, macro otherwise), accuracy; class = argmax of the probabilities, a fixed rule, so no
threshold is tuned on the data it is scored on. Regression: R2, Pearson r, MAE. Survival:
Harrell's C, Uno's IPCW C, mean time-dependent AUC and the integrated Brier score at a grid of
event-time percentiles. Each bootstrap resample redraws bags with replacement and recomputes
the metric; resamples where a metric is undefined (one class only) are skipped. Each task kind
(:mod:`wsi_ssl.mil.tasks`) picks its metric function and bootstraps it (``Task.metrics``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.util import Surv

MetricFn = Callable[[np.ndarray], dict[str, float]]


def classification_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    y = np.asarray(y).astype(int)
    pred = prob.argmax(axis=1)
    n_classes = prob.shape[1]
    if n_classes == 2:
        auroc = roc_auc_score(y, prob[:, 1])
        f1 = f1_score(y, pred, zero_division=0)
    else:
        auroc = roc_auc_score(y, prob, multi_class="ovr", average="macro", labels=list(range(n_classes)))
        f1 = f1_score(y, pred, average="macro", zero_division=0)
    return {
        "auroc": float(auroc),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "f1": float(f1),
        "accuracy": float(accuracy_score(y, pred)),
    }


def regression_metrics(y: np.ndarray, value: np.ndarray) -> dict[str, float]:
    return {
        "r2": float(r2_score(y, value)),
        "pearson_r": float(pearsonr(y, value)[0]),
        "mae": float(mean_absolute_error(y, value)),
    }


def eval_times(time: np.ndarray, event: np.ndarray, n: int = 15) -> np.ndarray:
    """Evaluation grid: 10th-80th percentiles of event times, strictly inside the follow-up."""
    t_ev = time[event.astype(bool)]
    grid = np.unique(np.percentile(t_ev, np.linspace(10, 80, n)))
    return grid[(grid > time.min()) & (grid < time.max())]


def survival_metrics(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    surv: np.ndarray | None = None,
    times: np.ndarray | None = None,
) -> dict[str, float]:
    """``surv`` [n, len(times)] holds predicted survival probabilities at ``times`` (for the IBS)."""
    ev = event.astype(bool)
    y = Surv.from_arrays(event=ev, time=time)
    out = {"c_index": float(concordance_index_censored(ev, time, risk)[0])}
    if times is None or len(times) == 0:
        times = eval_times(time, event)
    ok = (times >= time.min()) & (times < time.max())  # sksurv needs times inside the follow-up
    times_ok = times[ok]
    if len(times_ok):
        out["uno_c"] = float(concordance_index_ipcw(y, y, risk, tau=times_ok.max())[0])
        out["td_auc"] = float(cumulative_dynamic_auc(y, y, risk, times_ok)[1])
        if surv is not None:
            out["ibs"] = (
                float(integrated_brier_score(y, y, surv[:, ok], times_ok)) if len(times_ok) > 1 else float("nan")
            )
    return out


def bootstrap_ci(fn: MetricFn, n: int, n_boot: int, ci: float = 0.95, seed: int = 0) -> dict[str, dict[str, float]]:
    """Point estimate and percentile CI for every metric ``fn`` returns, resampling ``n`` rows."""
    point = fn(np.arange(n))
    draws: dict[str, list[float]] = {k: [] for k in point}
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # undefined-metric warnings: such draws are skipped
                values = fn(idx)
        except (ValueError, ZeroDivisionError, IndexError):
            continue  # undefined on this resample (e.g. one class, no event, no comparable pair)
        for k, v in values.items():
            if k in draws and np.isfinite(v):
                draws[k].append(v)
    lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    result: dict[str, dict[str, float]] = {}
    for k, v in point.items():
        d = np.asarray(draws[k])
        nan = float("nan")
        result[k] = {
            "value": v,
            "ci_low": float(np.percentile(d, lo)) if len(d) else nan,
            "ci_high": float(np.percentile(d, hi)) if len(d) else nan,
            "n_boot": int(len(d)),
        }
    return result
