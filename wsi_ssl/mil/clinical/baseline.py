"""The covariates-only model of the comparison: scikit-learn / scikit-survival on the same folds.

Every non-slide input (covariates and omics) through the fold-fitted encoder
(:class:`~wsi_ssl.mil.clinical.encoder.SideEncoder`: training-fold z-scores, missing values as
0 plus an indicator), with the first seen level of each categorical dropped (reference coding:
a full one-hot is collinear with a Cox model's baseline or a regression's intercept) and
columns constant on the training fold dropped. The L2 penalty is chosen by an inner 3-fold CV on
the training fold only, from a small grid, so many omics features on few patients do not make
the baseline look worse than it is:

- classification: ``LogisticRegression`` (Newton-Cholesky: ~30x faster than L-BFGS on these small, often separable designs); regression: ``Ridge``;
- survival: ``CoxPHSurvivalAnalysis`` (Breslow ties), survival curves from its baseline hazard.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from wsi_ssl.mil.clinical.encoder import SideEncoder
from wsi_ssl.mil.clinical.tables import SideSpec

PENALTIES = (1e-4, 1e-2, 1.0, 10.0, 100.0)


def design(spec: SideSpec, train_raw: np.ndarray, raw: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Design matrices for each of ``raw`` with the encoding fitted on ``train_raw`` only."""
    enc = SideEncoder(spec).eval()
    enc.fit(train_raw)
    drop = np.zeros(enc.flat_width, dtype=bool)
    groups = spec.groups()
    for g, c in enumerate(spec.covariates):
        if c.levels is not None:
            cols = np.flatnonzero(groups == g)
            seen = cols[enc.seen.numpy()[cols] > 0]
            if len(seen):
                drop[seen[0]] = True

    def flat(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return enc(torch.from_numpy(np.asarray(x, dtype=np.float32))).flat().numpy().astype(np.float64)

    train = flat(train_raw)
    keep = ~drop & (train.std(axis=0) > 1e-12)
    return [flat(x)[:, keep] for x in raw]


def _inner_cv(fit_score: Callable[[float, np.ndarray, np.ndarray], float], n: int, seed: int) -> float:
    """The penalty with the best mean inner-fold score (training fold only)."""
    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(n), 3)
    best, best_score = PENALTIES[0], -np.inf
    for alpha in PENALTIES:
        scores = []
        for k in range(3):
            val = parts[k]
            tr = np.concatenate([parts[j] for j in range(3) if j != k])
            try:
                scores.append(fit_score(alpha, tr, val))
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                continue
        if scores and np.nanmean(scores) > best_score:
            best, best_score = alpha, float(np.nanmean(scores))
    return best


def fit_predict(
    task_kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    times: np.ndarray | None,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Out-of-fold predictions in the task's names (``prob`` / ``value`` / ``risk`` (+ S(t))) and the model's info."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny folds
        return _FITTERS[task_kind](x_train, y_train, x_test, n_classes, times, seed)


def _classification(x, y, xt, n_classes, times, seed):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    y = y.astype(int)

    def score(alpha: float, tr: np.ndarray, va: np.ndarray) -> float:
        m = LogisticRegression(C=1.0 / alpha, solver="newton-cholesky", max_iter=100).fit(x[tr], y[tr])
        prob = np.zeros((len(va), n_classes))
        prob[:, m.classes_] = m.predict_proba(x[va])
        return -log_loss(y[va], np.clip(prob, 1e-9, 1), labels=list(range(n_classes)))

    alpha = _inner_cv(score, len(y), seed)
    m = LogisticRegression(C=1.0 / alpha, solver="newton-cholesky", max_iter=100).fit(x, y)
    prob = np.zeros((len(xt), n_classes))
    prob[:, m.classes_] = m.predict_proba(xt)
    return {"prob": prob}, {"penalty": alpha}


def _regression(x, y, xt, n_classes, times, seed):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import Ridge

    def score(alpha: float, tr: np.ndarray, va: np.ndarray) -> float:
        return -float(np.mean((Ridge(alpha=alpha).fit(x[tr], y[tr]).predict(x[va]) - y[va]) ** 2))

    alpha = _inner_cv(score, len(y), seed)
    return {"value": Ridge(alpha=alpha).fit(x, y).predict(xt)}, {"penalty": alpha}


def _survival(x, y, xt, n_classes, times, seed):  # type: ignore[no-untyped-def]
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    def surv(rows: np.ndarray) -> np.ndarray:
        return Surv.from_arrays(event=y[rows, 1].astype(bool), time=y[rows, 0])

    def score(alpha: float, tr: np.ndarray, va: np.ndarray) -> float:
        m = CoxPHSurvivalAnalysis(alpha=alpha, ties="breslow").fit(x[tr], surv(tr))
        return float(concordance_index_censored(y[va, 1].astype(bool), y[va, 0], m.predict(x[va]))[0])

    alpha = _inner_cv(score, len(y), seed)
    for alpha in [a for a in PENALTIES if a >= alpha]:  # a tiny fold may need more penalty to converge
        try:
            m = CoxPHSurvivalAnalysis(alpha=alpha, ties="breslow").fit(x, surv(np.arange(len(y))))
            break
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
    else:
        raise ValueError("covariates-only Cox model: no penalty in the grid converged on this fold")
    out = {"risk": m.predict(xt)}
    if times is not None and len(times):
        fns = m.predict_survival_function(xt)  # step functions defined on the training fold's times
        out["survival_at_times"] = np.stack([f(np.clip(times, f.domain[0], f.domain[1])) for f in fns])
    return out, {"penalty": alpha}


_FITTERS: dict[str, Callable[..., tuple[dict[str, np.ndarray], dict[str, Any]]]] = {
    "classification": _classification,
    "regression": _regression,
    "survival": _survival,
}
