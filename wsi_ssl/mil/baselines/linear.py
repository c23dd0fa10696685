"""The linear baseline of each task kind, from scikit-learn and scikit-survival.

Inputs are already standardised on the training fold (:mod:`.pooled`), so one fixed L2 penalty
means the same thing on every feature. Penalties are small and fixed (``eval.pooled_linear``)
rather than tuned: the baseline is a reference point, and a fixed recipe is what published
pooled baselines use. The L2 penalty keeps the fits finite when features outnumber bags
(2 x 1,536 pooled features on a few hundred patients).
"""

from __future__ import annotations

import warnings

import numpy as np

from wsi_ssl.mil.baselines.registry import LinearSettings, register_linear


@register_linear("classification")
def logistic(
    x: np.ndarray, y: np.ndarray, xt: np.ndarray, n_classes: int, times: np.ndarray | None, s: LinearSettings
) -> dict[str, np.ndarray]:
    """L2 logistic regression (multinomial for several classes); class probabilities in class order."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence chatter on separable folds
        model = LogisticRegression(C=s.c, max_iter=5000).fit(x, y)
    prob = np.zeros((len(xt), n_classes))
    prob[:, model.classes_] = model.predict_proba(xt)  # a class absent from the fold keeps probability 0
    return {"prob": prob}


@register_linear("regression")
def ridge(
    x: np.ndarray, y: np.ndarray, xt: np.ndarray, n_classes: int, times: np.ndarray | None, s: LinearSettings
) -> dict[str, np.ndarray]:
    """Ridge regression on the target in its own units."""
    from sklearn.linear_model import Ridge

    return {"value": Ridge(alpha=s.alpha).fit(x, np.asarray(y, dtype=np.float64)).predict(xt)}


@register_linear("survival")
def cox(
    x: np.ndarray, y: np.ndarray, xt: np.ndarray, n_classes: int, times: np.ndarray | None, s: LinearSettings
) -> dict[str, np.ndarray]:
    """Ridge-penalised Cox PH (Efron ties): the risk, and S(t) at ``times`` from its Breslow baseline.

    Survival curves are step functions on the training fold's times; ``times`` beyond them take
    the value at the nearest end (the model says nothing past its last training time).
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    y = np.asarray(y, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Ties in event time" and convergence chatter
        model = CoxPHSurvivalAnalysis(alpha=s.alpha, ties="efron").fit(
            x, Surv.from_arrays(event=y[:, 1].astype(bool), time=y[:, 0])
        )
    out = {"risk": np.asarray(model.predict(xt), dtype=np.float64)}
    if times is not None and len(times):
        fns = model.predict_survival_function(xt)
        out["survival_at_times"] = np.stack([f(np.clip(times, f.domain[0], f.domain[1])) for f in fns])
    return out
