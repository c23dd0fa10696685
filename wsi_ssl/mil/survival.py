"""Survival curves from model outputs, for the integrated Brier score and survival predictions.

Cox: a Breslow baseline cumulative hazard fitted on the training fold's risks, so
S(t | x) = exp(-H0(t) * exp(risk)). Discrete-time: the per-bin survival, interpolated linearly
in time between bin edges (S = 1 at t = 0, held flat past the last finite edge).
"""

from __future__ import annotations

import numpy as np


def breslow_baseline(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct event times and the Breslow cumulative baseline hazard at each."""
    order = np.argsort(time, kind="stable")
    risk, time, event = risk[order], time[order], event[order].astype(bool)
    exp_r = np.exp(risk - risk.max())
    at_risk = np.cumsum(exp_r[::-1])[::-1]  # sum over t_j >= t_i
    uniq = np.unique(time[event])
    first = np.searchsorted(time, uniq, side="left")
    deaths = np.array([np.sum(event & (time == t)) for t in uniq])
    cumhaz = np.cumsum(deaths / at_risk[first]) * np.exp(-risk.max())
    return uniq, cumhaz


def cox_survival(risk: np.ndarray, times: np.ndarray, base_times: np.ndarray, base_cumhaz: np.ndarray) -> np.ndarray:
    """[n, len(times)] survival probabilities from risks and a Breslow baseline."""
    idx = np.searchsorted(base_times, times, side="right") - 1
    h0 = np.where(idx >= 0, base_cumhaz[np.clip(idx, 0, None)], 0.0)
    return np.exp(-np.outer(np.exp(risk), h0))


def discrete_survival_at(surv_bins: np.ndarray, edges: np.ndarray, times: np.ndarray) -> np.ndarray:
    """[n, len(times)] survival from per-bin survival [n, K] and the bin edges [K+1]."""
    finite = edges[np.isfinite(edges)]  # 0, q1, ..., q_{K-1}
    knots = np.concatenate([finite, [finite[-1] * 2 if finite[-1] > 0 else 1.0]])[: surv_bins.shape[1] + 1]
    values = np.concatenate([np.ones((len(surv_bins), 1)), surv_bins], axis=1)[:, : len(knots)]
    return np.stack([np.interp(times, knots, row) for row in values])
