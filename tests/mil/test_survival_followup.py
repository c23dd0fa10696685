"""Survival metrics on real follow-up: a study that ends on a date, and ties at the last time.

A cohort whose follow-up ends administratively censors everyone left at its last time, so the
censoring distribution is zero there and IPCW weights (1 / G(t)) do not exist for an event at
that time. The metrics must evaluate inside the horizon, record what they cannot compute, and
never stop the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wsi_ssl.mil.metrics import censoring_horizon, survival_metrics


def administrative(n: int = 322, end: float = 52.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Week-52 study end: ~30% events before it, 4 events and everyone else censored at week 52."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    time = np.full(n, end)
    event = np.zeros(n, dtype=bool)
    early = rng.random(n) < 1 / (1 + np.exp(-risk))  # higher risk, earlier event: a signal to find
    early &= rng.random(n) < 0.4
    time[early] = rng.uniform(1, end, early.sum())
    event[early] = True
    last_events = np.flatnonzero(~early)[:4]
    event[last_events] = True  # events on the last day, among the censored
    return time, event, risk


def test_sksurv_alone_fails_on_this_table() -> None:
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    time, event, risk = administrative()
    y = Surv.from_arrays(event=event, time=time)
    with pytest.raises(ValueError, match="censoring survival function is zero"):
        cumulative_dynamic_auc(y, y, risk, np.array([10.0, 20.0, 40.0]))


@pytest.mark.parametrize("ties_at_end", [True, False])
def test_ipcw_metrics_are_computed_inside_the_horizon(ties_at_end: bool) -> None:
    time, event, risk = administrative()
    if not ties_at_end:
        event[time == time.max()] = False
    horizon = censoring_horizon(time, event)
    assert horizon < time.max()
    missing: dict[str, str] = {}
    times = np.array([10.0, 20.0, 40.0, 52.0])  # the last one is at the study's end: left out
    surv = np.clip(1 - np.outer(1 / (1 + np.exp(-risk)), times / 60), 0, 1)
    out = survival_metrics(time, event, risk, surv, times, missing=missing)
    assert not missing
    assert all(np.isfinite(out[k]) for k in ("c_index", "uno_c", "td_auc", "ibs"))
    assert out["c_index"] > 0.55 and out["td_auc"] > 0.55  # the planted signal is found


def test_a_metric_that_cannot_be_computed_is_missing_with_its_reason() -> None:
    time, event, risk = administrative(n=40)
    missing: dict[str, str] = {}
    out = survival_metrics(time, np.zeros_like(event), risk, None, np.array([10.0]), missing=missing)
    assert np.isnan(out["c_index"]) and "c_index" in missing
    assert np.isnan(out["td_auc"]) and missing["td_auc"]


def test_mil_train_writes_metrics_for_administratively_censored_follow_up(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    from wsi_ssl.cli import main

    feats, df = make_cohort(tmp_path, n_patients=30)
    end = float(np.quantile(df["time"], 0.6))
    df["event"] = ((df["time"] < end) & (df["event"] == 1)).astype(int)
    df["time"] = np.minimum(df["time"], end)
    df.loc[df.index[df["time"] == end][:2], "event"] = 1  # events on the study's last day too
    table = tmp_path / "slides.csv"
    df.to_csv(table, index=False)
    configs = Path(__file__).resolve().parents[2] / "configs" / "mil"
    args = [
        "mil",
        "train",
        "--features",
        str(feats),
        "--slides",
        str(table),
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(configs / "abmil_survival.yaml"),
        "--folds",
        "3",
        "--epochs",
        "3",
        "--set",
        "aggregator.hidden_dim=16",
        "--set",
        "aggregator.attn_dim=8",
        "--set",
        "eval.bootstrap=20",
        "--set",
        "eval.heatmaps=0",
        "--set",
        "train.num_threads=1",
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    oof = metrics["oof"]
    assert np.isfinite(oof["c_index"]["value"])
    for name in ("uno_c", "td_auc"):
        assert np.isfinite(oof[name]["value"]) or oof[name].get("missing")
