"""The survival losses (the task kinds in :mod:`wsi_ssl.mil.tasks` build their loss from these).

Cox partial likelihood over the batch's risk set: unweighted, it is torchsurv's tested
``neg_partial_log_likelihood`` (Efron or Breslow ties), normalized per event rather than per
tie group (torchsurv's ``mean`` divides by the number of distinct event times when there are
ties, which would make the loss scale jump with the tie pattern). torchsurv takes no subject
weights, so the weighted variant (for imbalanced events) is implemented here; with unit
weights it equals torchsurv's, which the tests check. The discrete-time hazard NLL follows
Zadeh & Schmid (2020) with bins fitted on training-fold event times only (:func:`fit_time_bins`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    # torchsurv scripts a validator with torch.jit.script at import, which torch >= 2.10 deprecates
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from torchsurv.loss.cox import neg_partial_log_likelihood


def cox_nll(
    log_hz: torch.Tensor,
    time: torch.Tensor,
    event: torch.Tensor,
    ties: str = "efron",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Negative Cox partial log-likelihood per (weighted) event; 0 (with a graph) if no events."""
    log_hz = log_hz.reshape(-1)
    event = event.reshape(-1).bool()
    time = time.reshape(-1).to(log_hz.dtype)
    if not bool(event.any()):
        return log_hz.sum() * 0.0
    if weights is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Ties in `time` detected")
            total = neg_partial_log_likelihood(log_hz, event, time, ties_method=ties, reduction="sum")
        return total / event.sum()
    return weighted_cox_nll(log_hz, time, event, weights.reshape(-1).to(log_hz.dtype), ties)


def weighted_cox_nll(
    log_hz: torch.Tensor, time: torch.Tensor, event: torch.Tensor, weights: torch.Tensor, ties: str = "efron"
) -> torch.Tensor:
    """Weighted partial likelihood (the ``coxph(weights=)`` form), divided by the event weight.

    At each distinct event time k with tied events H_k (m_k of them, weight d_k), risk-set sum
    S_k = sum_{t_j >= t_k} w_j e^{eta_j} and tied sum T_k = sum_{H_k} w_i e^{eta_i}:
    Breslow ll_k = sum_{H_k} w_i eta_i - d_k log S_k;
    Efron   ll_k = sum_{H_k} w_i eta_i - d_k/m_k sum_{r<m_k} log(S_k - r/m_k T_k).
    """
    shift = log_hz.max().detach()
    risk = weights * torch.exp(log_hz - shift)
    uniq, inv = torch.unique(time, return_inverse=True)
    k = len(uniq)
    ev = event.to(log_hz.dtype)
    zeros = torch.zeros(k, dtype=log_hz.dtype, device=log_hz.device)
    at_time = zeros.scatter_add(0, inv, risk)
    s = torch.flip(torch.cumsum(torch.flip(at_time, [0]), 0), [0])  # suffix sums over later times
    m = zeros.scatter_add(0, inv, ev)
    d = zeros.scatter_add(0, inv, ev * weights)
    t = zeros.scatter_add(0, inv, ev * risk)
    num = zeros.scatter_add(0, inv, ev * weights * (log_hz - shift))
    has = m > 0
    if ties == "breslow":
        log_den = d * torch.log(s)
    elif ties == "efron":
        m_max = int(m.max().item())
        r = torch.arange(m_max, dtype=log_hz.dtype, device=log_hz.device)
        mm = m.clamp(min=1).unsqueeze(1)
        valid = r.unsqueeze(0) < m.unsqueeze(1)
        terms = torch.where(
            valid, s.unsqueeze(1) - r.unsqueeze(0) / mm * t.unsqueeze(1), torch.ones_like(s).unsqueeze(1)
        )
        log_den = d / m.clamp(min=1) * torch.log(terms).sum(dim=1)
    else:
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    ll = (num - log_den)[has].sum()
    return -ll / d[has].sum()


def balanced_event_weights(event: torch.Tensor) -> torch.Tensor:
    """Weights that give events and censored subjects equal total weight in the batch."""
    event = event.reshape(-1).bool()
    n, n_ev = event.numel(), int(event.sum())
    if n_ev in (0, n):
        return torch.ones(n, device=event.device)
    w_ev, w_cens = n / (2.0 * n_ev), n / (2.0 * (n - n_ev))
    return torch.where(
        event, torch.full((n,), w_ev, device=event.device), torch.full((n,), w_cens, device=event.device)
    )


def fit_time_bins(time: np.ndarray, event: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin edges [0, q_1, ..., q_{K-1}, inf] at quantiles of the *training* event times."""
    t_ev = np.asarray(time, dtype=float)[np.asarray(event).astype(bool)]
    if len(t_ev) == 0:
        t_ev = np.asarray(time, dtype=float)
    inner = np.quantile(t_ev, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.concatenate([[0.0], inner, [np.inf]])


def time_to_bin(time: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Index of the bin holding each time: edges[k] <= t < edges[k+1] (last bin open-ended)."""
    return torch.bucketize(time.contiguous(), edges[1:-1].contiguous(), right=True)


def discrete_nll(logits: torch.Tensor, time: torch.Tensor, event: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Discrete-time hazard NLL: events -log(S_{k-1} h_k), censored -log(S_k), mean over bags."""
    k = time_to_bin(time, edges).unsqueeze(1)
    log_h = F.logsigmoid(logits)
    log_1mh = F.logsigmoid(-logits)
    log_s = torch.cumsum(log_1mh, dim=1)  # log S at the end of each bin
    log_s_prev = torch.cat([torch.zeros_like(log_s[:, :1]), log_s[:, :-1]], dim=1)
    ev = event.to(logits.dtype)
    uncensored = -(log_s_prev.gather(1, k) + log_h.gather(1, k)).squeeze(1)
    censored = -log_s.gather(1, k).squeeze(1)
    return (ev * uncensored + (1 - ev) * censored).mean()
