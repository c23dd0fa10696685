"""Cox partial likelihood against a direct computation, torchsurv, and replicated data;
the discrete-time NLL against its formula; discrete bins from the training fold only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchsurv.loss.cox import neg_partial_log_likelihood

from wsi_ssl.mil.losses import cox_nll, discrete_nll, fit_time_bins, weighted_cox_nll

# Hand-made case with tied event times (t=2: two events; t=5: one event and a censored tie).
ETA = [0.3, -0.2, 1.1, 0.0, -0.7, 0.5]
TIME = [2.0, 2.0, 3.0, 5.0, 5.0, 7.0]
EVENT = [1, 1, 0, 1, 0, 1]


def direct_pll(eta: list[float], time: list[float], event: list[int], ties: str) -> float:
    """The textbook partial log-likelihood, by explicit loops over distinct event times."""
    total = 0.0
    for t in sorted({t for t, e in zip(time, event) if e}):
        deaths = [i for i in range(len(eta)) if time[i] == t and event[i]]
        risk = sum(math.exp(eta[j]) for j in range(len(eta)) if time[j] >= t)
        tied = sum(math.exp(eta[i]) for i in deaths)
        total += sum(eta[i] for i in deaths)
        m = len(deaths)
        for r in range(m):
            total -= math.log(risk - (r / m) * tied) if ties == "efron" else math.log(risk)
    return total


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_equals_direct_partial_likelihood(ties: str) -> None:
    n_events = sum(EVENT)
    expected = -direct_pll(ETA, TIME, EVENT, ties) / n_events
    eta, time, event = (
        torch.tensor(ETA, dtype=torch.float64),
        torch.tensor(TIME, dtype=torch.float64),
        torch.tensor(EVENT),
    )
    # torchsurv accumulates tie groups in float32 even for float64 input: 1e-6, not 1e-10
    assert cox_nll(eta, time, event, ties=ties).item() == pytest.approx(expected, rel=1e-6)
    unit = torch.ones(len(ETA), dtype=torch.float64)
    assert weighted_cox_nll(eta, time, event.bool(), unit, ties=ties).item() == pytest.approx(expected, rel=1e-10)


def test_efron_and_breslow_differ_only_with_ties() -> None:
    eta, event = torch.tensor(ETA, dtype=torch.float64), torch.tensor(EVENT)
    tied, distinct = torch.tensor(TIME, dtype=torch.float64), torch.tensor([1.0, 2, 3, 4, 5, 6], dtype=torch.float64)
    assert cox_nll(eta, tied, event, "efron").item() != pytest.approx(cox_nll(eta, tied, event, "breslow").item())
    assert cox_nll(eta, distinct, event, "efron").item() == pytest.approx(
        cox_nll(eta, distinct, event, "breslow").item()
    )


def test_unweighted_cox_is_torchsurv_per_event() -> None:
    g = torch.Generator().manual_seed(0)
    eta = torch.randn(50, generator=g, dtype=torch.float64)
    time = torch.randint(1, 12, (50,), generator=g).double()
    event = torch.rand(50, generator=g) < 0.6
    ref = neg_partial_log_likelihood(eta, event, time, ties_method="efron", reduction="sum") / event.sum()
    assert cox_nll(eta, time, event).item() == pytest.approx(ref.item(), rel=1e-10)
    w = weighted_cox_nll(eta, time, event, torch.ones(50, dtype=torch.float64), "efron")
    assert w.item() == pytest.approx(ref.item(), rel=1e-6)


def test_weighted_breslow_equals_replicated_rows() -> None:
    """Integer weights behave like repeating a subject that many times (Breslow)."""
    w = [1, 3, 2, 1, 2, 1]
    rep = [(e, t, v) for e, t, v, k in zip(ETA, TIME, EVENT, w) for _ in range(k)]
    expected = -direct_pll([r[0] for r in rep], [r[1] for r in rep], [r[2] for r in rep], "breslow") / sum(
        k for k, v in zip(w, EVENT) if v
    )
    got = weighted_cox_nll(
        torch.tensor(ETA, dtype=torch.float64),
        torch.tensor(TIME, dtype=torch.float64),
        torch.tensor(EVENT).bool(),
        torch.tensor(w, dtype=torch.float64),
        "breslow",
    )
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_cox_without_events_is_zero_with_gradient() -> None:
    eta = torch.randn(4, requires_grad=True)
    loss = cox_nll(eta, torch.arange(4.0), torch.zeros(4))
    loss.backward()
    assert loss.item() == 0.0 and eta.grad is not None


def test_discrete_nll_matches_formula() -> None:
    logits = torch.tensor([[0.2, -1.0, 0.5], [1.0, 0.3, -0.4]], dtype=torch.float64)
    edges = torch.tensor([0.0, 10.0, 20.0, math.inf], dtype=torch.float64)
    time = torch.tensor([15.0, 25.0], dtype=torch.float64)  # bins 1 and 2
    event = torch.tensor([1.0, 0.0], dtype=torch.float64)
    h = torch.sigmoid(logits)
    event_term = -math.log((1 - h[0, 0]) * h[0, 1])  # survived bin 0, event in bin 1
    censored_term = -math.log((1 - h[1, 0]) * (1 - h[1, 1]) * (1 - h[1, 2]))  # survived through bin 2
    assert discrete_nll(logits, time, event, edges).item() == pytest.approx((event_term + censored_term) / 2, rel=1e-10)


def test_time_bins_are_quantiles_of_event_times() -> None:
    time = np.array([1.0, 2.0, 3.0, 4.0, 100.0, 200.0])
    event = np.array([1, 1, 1, 1, 0, 0])
    edges = fit_time_bins(time, event, 2)
    assert edges.tolist() == [0.0, 2.5, math.inf]  # censored times do not move the edges


def test_balanced_weights_give_events_and_censored_equal_mass() -> None:
    from wsi_ssl.mil.losses import balanced_event_weights
    from wsi_ssl.mil.tasks import get_task

    event = torch.tensor([1, 0, 0, 0, 0, 1, 0, 0])
    w = balanced_event_weights(event)
    assert float(w[event.bool()].sum()) == pytest.approx(float(w[~event.bool()].sum())) == pytest.approx(4.0)
    out = torch.tensor(ETA + [0.1, 0.2], dtype=torch.float64).unsqueeze(1)
    y = torch.stack([torch.tensor(TIME + [1.0, 9.0], dtype=torch.float64), event.double()], dim=1)
    got = get_task("survival").loss("cox", "breslow", "balanced")(out, y)
    ref = weighted_cox_nll(out[:, 0], y[:, 0], event.bool(), w.double(), "breslow")
    assert got.item() == pytest.approx(ref.item())
