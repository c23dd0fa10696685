"""Real covariates through the covariate path: GBSG2 (scikit-survival's German Breast Cancer Study).

1. Covariates only, through our code (slide-table columns -> fold-fitted encoder -> a late-fusion
   MIL model whose bags carry no information), equals scikit-survival's CoxPH fitted on the same
   folds within 0.01 in C-index; so does the comparison's covariates-only baseline.
2. GBSG2's covariates with generated bags that carry half of a known risk: the fused model beats
   both the covariates-only and the bags-only (histology-only) model out of fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sksurv.datasets import load_gbsg2
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.preprocessing import OneHotEncoder
from sksurv.util import Surv

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.clinical.compare import add_comparison, covariates_only
from wsi_ssl.mil.clinical.tables import attach_side, build_spec
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import run_cv
from wsi_ssl.mil.model import model_meta

COVARIATES = ["age", "estrec", "horTh", "menostat", "pnodes", "progrec", "tgrade", "tsize"]


def _gbsg2() -> tuple[pd.DataFrame, np.ndarray]:
    x, y = load_gbsg2()
    table = x.reset_index(drop=True).astype({c: str for c in ("horTh", "menostat", "tgrade")})
    table.insert(0, "patient_id", [f"G{i:03d}" for i in range(len(table))])
    return table, np.stack([y["time"], y["cens"].astype(float)], axis=1)


def _cfg(fusion: str, **extra: dict) -> MilConfig:  # type: ignore[type-arg]
    base = {
        "task": {"kind": "survival", "survival_loss": "cox", "ties": "breslow"},
        "aggregator": {"kind": "mean", "hidden_dim": 0, "dropout": 0.0},
        "model": {"fusion": {"kind": fusion, "hidden_dim": 1, "dropout": 0.0, "modality_dropout": 0.0}},
        "data": {"covariates": COVARIATES, "batch_size": 4096},
        "train": {"epochs": 100, "lr": 0.05, "weight_decay": 0.0, "val_fraction": 0.0},
        "eval": {"folds": 5, "bootstrap": 0, "importance_repeats": 0},
    }
    for k, v in extra.items():
        base[k] = {**base[k], **v}
    return MilConfig.model_validate(base)


def _bags(table: pd.DataFrame, y: np.ndarray, features: np.ndarray, cfg: MilConfig) -> tuple[list[Bag], dict]:  # type: ignore[type-arg]
    bags = [Bag(pid, pid, features[i], y[i], [pid]) for i, pid in enumerate(table["patient_id"])]
    spec = build_spec(table, cfg.data.covariates)
    attach_side(bags, table, spec, None, "patient")
    meta = model_meta(features.shape[-1], cfg.aggregator, "survival", None, "cox", 0)
    meta["fusion"], meta["side"] = cfg.model.fusion.model_dump(mode="json"), spec.to_json()
    return bags, meta


def test_gbsg2_covariates_only_cox_matches_scikit_survival(tmp_path: Path) -> None:
    table, y = _gbsg2()
    cfg = _cfg("late")
    bags, meta = _bags(table, y, np.zeros((len(table), 1, 1), np.float32), cfg)  # one blank tile per patient
    res = run_cv(cfg, meta, bags, tmp_path / "run")
    fold_of = res.oof["fold"].to_numpy()
    x = OneHotEncoder().fit_transform(load_gbsg2()[0]).to_numpy(float)
    _, base_pred, _ = covariates_only(cfg, meta, bags, build_spec(table, COVARIATES), fold_of, None)
    ours, baseline, ref = [], [], []
    for k in range(5):
        test, train = fold_of == k, fold_of != k
        mu, sd = x[train].mean(0), x[train].std(0)
        cox = CoxPHSurvivalAnalysis(ties="breslow").fit(
            (x[train] - mu) / sd, Surv.from_arrays(y[train, 1] > 0, y[train, 0])
        )

        def c(risk: np.ndarray, test: np.ndarray = test) -> float:
            return float(concordance_index_censored(y[test, 1] > 0, y[test, 0], risk)[0])

        ref.append(c(cox.predict((x[test] - mu) / sd)))
        ours.append(c(res.oof["risk"].to_numpy()[test]))
        baseline.append(c(base_pred["risk"][test]))
    assert np.mean(ref) == pytest.approx(0.68, abs=0.02)
    assert abs(np.mean(ours) - np.mean(ref)) < 0.01, (ours, ref)
    assert abs(np.mean(baseline) - np.mean(ref)) < 0.01, (baseline, ref)


def test_gbsg2_with_bags_carrying_half_the_risk_fused_beats_both(tmp_path: Path) -> None:
    table, y0 = _gbsg2()
    rng = np.random.default_rng(0)
    x = OneHotEncoder().fit_transform(load_gbsg2()[0]).to_numpy(float)
    x = (x - x.mean(0)) / x.std(0)
    lp = x @ CoxPHSurvivalAnalysis().fit(x, Surv.from_arrays(y0[:, 1] > 0, y0[:, 0])).coef_
    # The known risk: GBSG2's Cox linear predictor (scaled to sd 1.2) plus an independent part
    # of the same size that only the bags carry. Times drawn from it, ~35% censored.
    r_cov = 1.2 * (lp - lp.mean()) / lp.std()
    r_bag = rng.normal(0, 1.2, len(x))
    t_event = rng.exponential(1000 * np.exp(-(r_cov + r_bag)))
    t_cens = rng.uniform(200, 3000, len(x))
    y = np.stack([np.minimum(t_event, t_cens), (t_event <= t_cens).astype(float)], axis=1)
    feats = rng.normal(size=(len(x), 8, 4)).astype(np.float32)
    feats[:, :3, 0] += 2.5 * (r_bag / 1.2)[:, None]  # three tiles of each bag carry it
    keep = rng.permutation(len(x))[:400]  # a cohort of 400 keeps the test short
    table, y, feats = table.iloc[keep].reset_index(drop=True), y[keep], feats[keep]
    cfg = _cfg("late", eval={"folds": 3, "bootstrap": 100})
    bags, meta = _bags(table, y, feats, cfg)
    res = run_cv(cfg, meta, bags, tmp_path / "run")
    comp = add_comparison(cfg, meta, bags, res, tmp_path / "run", build_spec(table, COVARIATES))
    c = {k: comp[k]["c_index"]["value"] for k in ("covariates_only", "histology_only", "fused")}
    assert c["fused"] > c["covariates_only"] + 0.02 and c["fused"] > c["histology_only"] + 0.02, c
    assert comp["gain_vs_covariates"]["ci_low"] > 0 and comp["gain_vs_histology"]["ci_low"] > 0, comp
    assert min(c["covariates_only"], c["histology_only"]) > 0.6, c  # each half alone is a real signal
