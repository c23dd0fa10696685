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


def censoring_horizon(train_time: np.ndarray, train_event: np.ndarray) -> float:
    """The last time at which the censoring survival function G(t) of the training data is positive.

    IPCW metrics weight each event by 1 / G(t). A study that ends on a date censors everyone left at
    its last time, so G drops to zero there and an event at that time cannot be weighted (scikit-
    survival: "censoring survival function is zero at one or more time points"). Times after this
    horizon are left out of the IPCW metrics; Harrell's C needs no weights and uses everything.
    """
    from sksurv.nonparametric import CensoringDistributionEstimator

    y = Surv.from_arrays(event=train_event.astype(bool), time=train_time)
    estimator = CensoringDistributionEstimator().fit(y)
    grid = np.unique(train_time)
    positive = grid[estimator.predict_proba(grid) > 0]
    return float(positive.max()) if len(positive) else float("-inf")


def survival_metrics(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    surv: np.ndarray | None = None,
    times: np.ndarray | None = None,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    missing: dict[str, str] | None = None,
) -> dict[str, float]:
    """Harrell's C, and Uno's C, mean time-dependent AUC and the IBS weighted by the censoring
    distribution of ``train`` (time, event; default: the evaluated rows), as scikit-survival intends.

    ``surv`` [n, len(times)] holds predicted survival probabilities at ``times`` (for the IBS). The
    IPCW metrics are evaluated strictly inside the follow-up, up to the training data's censoring
    horizon (:func:`censoring_horizon`); rows past it are censored there. A metric that cannot be
    computed is NaN, and ``missing`` (when given) receives the reason under its name.
    """
    ev = event.astype(bool)
    out: dict[str, float] = {}
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # no comparable pair: 0/0 -> NaN
            out["c_index"] = float(concordance_index_censored(ev, time, risk)[0])
    except ValueError as exc:  # no event
        out["c_index"] = float("nan")
        if missing is not None:
            missing["c_index"] = str(exc)
    if missing is not None and not np.isfinite(out["c_index"]) and "c_index" not in missing:
        missing["c_index"] = "no comparable pair (no event before another row's time)"
    names = ["uno_c", "td_auc"] + (["ibs"] if surv is not None else [])

    def all_missing(why: str) -> dict[str, float]:
        for name in names:
            out[name] = float("nan")
            if missing is not None:
                missing[name] = why
        return out

    train_time, train_event = train if train is not None else (time, event)
    try:
        y_train = Surv.from_arrays(event=train_event.astype(bool), time=train_time)
        horizon = censoring_horizon(train_time, train_event)
        # Rows past the horizon are censored at it: their events cannot be weighted.
        t_cut = np.minimum(time, horizon)
        y = Surv.from_arrays(event=ev & (time <= horizon), time=t_cut)
        if times is None or len(times) == 0:
            times = eval_times(time, event)
    except (ValueError, IndexError) as exc:  # e.g. every row censored: no event to weight or to place times at
        return all_missing(str(exc))
    ok = (times >= t_cut.min()) & (times < t_cut.max()) & (times < horizon) & (times > train_time.min())
    times_ok = times[ok]
    if not len(times_ok):
        return all_missing(
            f"no evaluation time inside the follow-up before the censoring horizon ({horizon:g}): "
            "the censoring distribution is zero from there on"
        )
    computations: dict[str, Callable[[], float]] = {
        "uno_c": lambda: float(concordance_index_ipcw(y_train, y, risk, tau=times_ok.max())[0]),
        "td_auc": lambda: float(cumulative_dynamic_auc(y_train, y, risk, times_ok)[1]),
    }
    if surv is not None:
        computations["ibs"] = lambda: (
            float(integrated_brier_score(y_train, y, surv[:, ok], times_ok)) if len(times_ok) > 1 else float("nan")
        )
    undefined = {  # why a metric that came back NaN is undefined on these rows
        "uno_c": "no comparable pair before the evaluation horizon",
        "td_auc": "an evaluation time without an event before it or a row still at risk after it",
        "ibs": "the integrated Brier score needs at least two evaluation times",
    }
    for name, compute in computations.items():
        try:
            # an undefined value comes back as NaN (0/0 inside scikit-survival), reasoned below
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = compute()
        except (ValueError, ZeroDivisionError) as exc:  # e.g. no comparable pair, no event before a time
            out[name] = float("nan")
            if missing is not None:
                missing[name] = str(exc)
        if missing is not None and not np.isfinite(out[name]) and name not in missing:
            missing[name] = undefined[name]
    return out


def bootstrap_ci(
    fn: MetricFn, n: int, n_boot: int, ci: float = 0.95, seed: int = 0, point: dict[str, float] | None = None
) -> dict[str, dict[str, float]]:
    """Point estimate and percentile CI for every metric ``fn`` returns, resampling ``n`` rows.

    ``point``: the estimate on all rows when the caller has it already (``fn(np.arange(n))``)."""
    if point is None:
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
