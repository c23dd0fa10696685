"""The mean+max pooled linear baseline (``comparison.pooled_linear``), pinned to scikit-learn /
scikit-survival pipelines built by hand on the same folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from wsi_ssl.cli import main
from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.baselines import get_linear, linear_kinds, pool_features, pooled_linear_oof
from wsi_ssl.mil.baselines.registry import LinearSettings
from wsi_ssl.mil.tasks import task_kinds
from wsi_ssl.pipeline.report.baseline import pooled_linear_table


def _bags(kind: str, n: int = 40, dim: int = 5, seed: int = 0) -> tuple[list[Bag], np.ndarray]:
    rng = np.random.default_rng(seed)
    bags, ys = [], []
    for i in range(n):
        x = rng.normal(size=(int(rng.integers(3, 12)), dim)).astype(np.float32)
        signal = float(x[:, 0].max() + x[:, 1].mean())
        if kind == "classification":
            y = np.asarray(int(signal + rng.normal(scale=0.5) > 1.0))
        elif kind == "regression":
            y = np.asarray(2.0 * signal + rng.normal(scale=0.3))
        else:
            y = np.asarray([rng.exponential(10.0 * np.exp(-signal)) + 0.1, float(rng.random() < 0.7)])
        bags.append(Bag(key=f"b{i}", patient_id=f"p{i}", features=x, target=y))
        ys.append(y)
    return bags, np.stack(ys)


def _hand_pooled(bags: list[Bag]) -> np.ndarray:
    return np.array([np.r_[b.features.astype(np.float64).mean(0), b.features.astype(np.float64).max(0)] for b in bags])


def test_every_task_kind_has_a_linear_baseline() -> None:
    assert linear_kinds() == task_kinds()
    with pytest.raises(ValueError, match="known: classification"):
        get_linear("nope")


@pytest.mark.parametrize("kind", ["classification", "regression", "survival"])
def test_equals_a_hand_made_pipeline_on_the_same_folds(kind: str) -> None:
    bags, y = _bags(kind)
    fold_of = np.arange(len(bags)) % 4
    x = pool_features(bags)
    np.testing.assert_allclose(x, _hand_pooled(bags), rtol=1e-6)  # mean, then max, per feature
    oof = pooled_linear_oof(kind, x, y, fold_of, n_classes=2, settings=LinearSettings(c=0.5, alpha=2.0))
    for k in range(4):
        tr, te = fold_of != k, fold_of == k
        if kind == "classification":
            ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=5000)).fit(x[tr], y[tr])
            np.testing.assert_allclose(oof["prob"][te], ref.predict_proba(x[te]), atol=1e-6)
        elif kind == "regression":
            ref = make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(x[tr], y[tr])
            np.testing.assert_allclose(oof["value"][te], ref.predict(x[te]), rtol=1e-8)
        else:
            surv = Surv.from_arrays(event=y[tr, 1].astype(bool), time=y[tr, 0])
            ref = make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=2.0, ties="efron")).fit(x[tr], surv)
            np.testing.assert_allclose(oof["risk"][te], ref.predict(x[te]), rtol=1e-6, atol=1e-8)


def test_a_held_out_bag_touches_no_other_prediction() -> None:
    """Standardisation and fit use the training fold only: changing one held-out bag (even by a
    factor of 1,000) leaves every other held-out prediction of its fold as it was."""
    bags, y = _bags("classification")
    fold_of = np.arange(len(bags)) % 4
    x = pool_features(bags)
    before = pooled_linear_oof("classification", x, y, fold_of, n_classes=2)["prob"]
    x2 = x.copy()
    x2[0] *= 1000.0  # bag 0 is in fold 0
    after = pooled_linear_oof("classification", x2, y, fold_of, n_classes=2)["prob"]
    others = np.flatnonzero(fold_of == 0)[1:]
    np.testing.assert_array_equal(after[others], before[others])
    assert not np.allclose(after[0], before[0])


def test_survival_curves_at_the_eval_times() -> None:
    bags, y = _bags("survival")
    times = np.array([0.5, 2.0, 5.0])
    oof = pooled_linear_oof("survival", pool_features(bags), y, np.arange(len(bags)) % 3, times=times)
    s = oof["survival_at_times"]
    assert s.shape == (len(bags), 3)
    assert ((s >= 0) & (s <= 1)).all() and (np.diff(s, axis=1) <= 1e-12).all()  # survival never rises


FAST = ["--set", "aggregator.hidden_dim=8", "--set", "aggregator.attn_dim=8", "--set", "eval.bootstrap=20"]
FAST += ["--set", "train.num_threads=1", "--set", "eval.heatmaps=0", "--set", "eval.plots=false", "--epochs", "2"]


def _train(tmp_path: Path, make_cohort, *extra: str) -> tuple[Path, pd.DataFrame]:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=18)
    table, run = tmp_path / "slides.csv", tmp_path / "run"
    df.to_csv(table, index=False)
    args = ["mil", "train", "--features", str(feats), "--slides", str(table), "--out", str(run), "--folds", "3"]
    assert main([*args, *FAST, *extra]) == 0
    return run, df


def test_every_mil_train_run_writes_the_baseline(tmp_path: Path, make_cohort, capsys) -> None:  # type: ignore[no-untyped-def]
    run, df = _train(tmp_path, make_cohort, "--set", "eval.pooled_linear.c=0.3")
    metrics = json.loads((run / "metrics.json").read_text())
    entry = metrics["comparison"]["pooled_linear"]
    assert metrics["comparison"]["metric"] == "auroc"
    assert set(entry) == set(metrics["oof"])  # the model's metrics, computed by the same code
    for m in entry.values():
        assert set(m) >= {"value", "ci_low", "ci_high", "n_boot"} and m["ci_low"] <= m["value"] <= m["ci_high"]
    gain = metrics["comparison"]["gain_vs_pooled_linear"]
    assert set(gain) >= {"value", "ci_low", "ci_high", "p_le_0"}

    # Pinned: the same figures from a hand-made pipeline on the run's own folds.
    oof = pd.read_csv(run / "oof_predictions.csv", dtype={"key": str})
    feats = tmp_path / "features"
    from wsi_ssl.stores.features import feature_path, read_features

    x = np.array([_hand_pooled([_bag(read_features(feature_path(feats, f"{k}_S0")).features)])[0] for k in oof["key"]])
    y = (oof["target"] == "pos").to_numpy().astype(int)
    prob = np.zeros(len(y))
    for k in oof["fold"].unique():
        tr, te = (oof["fold"] != k).to_numpy(), (oof["fold"] == k).to_numpy()
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=5000)).fit(x[tr], y[tr])
        prob[te] = ref.predict_proba(x[te])[:, 1]
    assert entry["auroc"]["value"] == pytest.approx(roc_auc_score(y, prob), abs=1e-9)
    assert entry["accuracy"]["value"] == pytest.approx(accuracy_score(y, prob > 0.5), abs=1e-9)
    assert "pooled linear baseline (mean+max, same folds): auroc" in capsys.readouterr().out
    html = pooled_linear_table(metrics)  # the pipeline report's rows beside the model
    assert f"{entry['auroc']['value']:.3f} [{entry['auroc']['ci_low']:.3f}" in html and "paired bootstrap" in html


def _bag(features: np.ndarray) -> Bag:
    return Bag(key="k", patient_id="p", features=features, target=np.asarray(0))


def test_the_baseline_can_be_switched_off(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    run, _ = _train(tmp_path, make_cohort, "--set", "eval.pooled_linear.enabled=false")
    assert "pooled_linear" not in json.loads((run / "metrics.json").read_text()).get("comparison", {})
