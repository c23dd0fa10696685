"""Figures for the multimodal MIL docs (issue 14), run outside the test suite.

The two GBSG2 checks of ``tests/mil/test_gbsg2_covariates.py`` (1, 2), with every figure printed
rather than only asserted (same data, folds, seeds and settings as the tests), and the demo
cohort's ceiling (3):

1. ``gbsg2_cox``: GBSG2's eight covariates through our covariate path (slide-table columns ->
   fold-fitted encoder -> a late-fusion model whose one-tile bags carry nothing), and the
   comparison's covariates-only baseline, against scikit-survival's ``CoxPHSurvivalAnalysis``
   fitted on the same 5 folds with the same training-fold standardisation: Harrell's C per fold.
2. ``gbsg2_half_risk``: GBSG2's covariates with generated bags carrying an independent half of a
   known risk (400 patients, 3 folds): out-of-fold C of covariates-only, bags-only
   (histology-only) and fused, with the paired-bootstrap gains.
3. ``demo_oracle``: the demo cohort's planted survival risk split into its parts (rule 4 of
   ``wsi_ssl.synthetic.cohort``), each used as the risk score: the C-index of the slide's part
   (tumour fraction as each slide shows it, biomarker), of the covariate/omics-only part
   (``eta_clin``) and of the whole; the ceiling of what fusion can add. Nothing is rendered.

``--run RUN`` also prints the ``comparison`` of a ``wsi-ssl run`` pipeline's survival MIL runs
(e.g. the quickstart's), for both encoders.

    nice -n 10 .venv/bin/python benchmarks/mil_clinical.py
    nice -n 10 .venv/bin/python benchmarks/mil_clinical.py --only gbsg2_cox
    .venv/bin/python benchmarks/mil_clinical.py --only none --run /tmp/qs14
    .venv/bin/python benchmarks/mil_clinical.py --only demo_oracle
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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


def _cfg(folds: int, bootstrap: int) -> MilConfig:
    """A linear Cox model on the covariates when the bags carry nothing (as in the tests)."""
    return MilConfig.model_validate(
        {
            "task": {"kind": "survival", "survival_loss": "cox", "ties": "breslow"},
            "aggregator": {"kind": "mean", "hidden_dim": 0, "dropout": 0.0},
            "model": {"fusion": {"kind": "late", "hidden_dim": 1, "dropout": 0.0, "modality_dropout": 0.0}},
            "data": {"covariates": COVARIATES, "batch_size": 4096},
            "train": {"epochs": 100, "lr": 0.05, "weight_decay": 0.0, "val_fraction": 0.0},
            "eval": {"folds": folds, "bootstrap": bootstrap, "importance_repeats": 0},
        }
    )


def _bags(table: pd.DataFrame, y: np.ndarray, features: np.ndarray, cfg: MilConfig) -> tuple[list[Bag], dict[str, Any]]:
    bags = [Bag(pid, pid, features[i], y[i], [pid]) for i, pid in enumerate(table["patient_id"])]
    spec = build_spec(table, cfg.data.covariates)
    attach_side(bags, table, spec, None, "patient")
    meta = model_meta(features.shape[-1], cfg.aggregator, "survival", None, "cox", 0)
    meta["fusion"], meta["side"] = cfg.model.fusion.model_dump(mode="json"), spec.to_json()
    return bags, meta


def gbsg2_cox(tmp: Path) -> dict[str, Any]:
    table, y = _gbsg2()
    cfg = _cfg(folds=5, bootstrap=0)
    bags, meta = _bags(table, y, np.zeros((len(table), 1, 1), np.float32), cfg)
    res = run_cv(cfg, meta, bags, tmp / "cox")
    fold_of = res.oof["fold"].to_numpy()
    x = OneHotEncoder().fit_transform(load_gbsg2()[0]).to_numpy(float)
    _, base_pred, _ = covariates_only(cfg, meta, bags, build_spec(table, COVARIATES), fold_of, None)
    out: dict[str, list[float]] = {"ours_late_fusion": [], "ours_covariates_only": [], "scikit_survival": []}
    for k in range(5):
        test, train = fold_of == k, fold_of != k
        mu, sd = x[train].mean(0), x[train].std(0)
        cox = CoxPHSurvivalAnalysis(ties="breslow").fit(
            (x[train] - mu) / sd, Surv.from_arrays(y[train, 1] > 0, y[train, 0])
        )

        def c(risk: np.ndarray, test: np.ndarray = test) -> float:
            return float(concordance_index_censored(y[test, 1] > 0, y[test, 0], risk)[0])

        out["scikit_survival"].append(c(cox.predict((x[test] - mu) / sd)))
        out["ours_late_fusion"].append(c(res.oof["risk"].to_numpy()[test]))
        out["ours_covariates_only"].append(c(base_pred["risk"][test]))
    return {
        name: {"mean": round(float(np.mean(v)), 4), "per_fold": [round(c, 4) for c in v]} for name, v in out.items()
    }


def gbsg2_half_risk(tmp: Path) -> dict[str, Any]:
    table, y0 = _gbsg2()
    rng = np.random.default_rng(0)
    x = OneHotEncoder().fit_transform(load_gbsg2()[0]).to_numpy(float)
    x = (x - x.mean(0)) / x.std(0)
    lp = x @ CoxPHSurvivalAnalysis().fit(x, Surv.from_arrays(y0[:, 1] > 0, y0[:, 0])).coef_
    r_cov = 1.2 * (lp - lp.mean()) / lp.std()  # the covariates' half of the risk
    r_bag = rng.normal(0, 1.2, len(x))  # the bags' half, independent of it
    t_event = rng.exponential(1000 * np.exp(-(r_cov + r_bag)))
    t_cens = rng.uniform(200, 3000, len(x))
    y = np.stack([np.minimum(t_event, t_cens), (t_event <= t_cens).astype(float)], axis=1)
    feats = rng.normal(size=(len(x), 8, 4)).astype(np.float32)
    feats[:, :3, 0] += 2.5 * (r_bag / 1.2)[:, None]  # three tiles of each bag carry it
    keep = rng.permutation(len(x))[:400]
    table, y, feats = table.iloc[keep].reset_index(drop=True), y[keep], feats[keep]
    cfg = _cfg(folds=3, bootstrap=100)
    bags, meta = _bags(table, y, feats, cfg)
    res = run_cv(cfg, meta, bags, tmp / "half")
    comp = add_comparison(cfg, meta, bags, res, tmp / "half", build_spec(table, COVARIATES))
    return _summary(comp) | {"events": int(y[:, 1].sum()), "patients": len(y)}


def _summary(comp: dict[str, Any]) -> dict[str, Any]:
    key = comp["metric"]
    out: dict[str, Any] = {}
    for name in ("covariates_only", "histology_only", "fused", "pooled_linear"):
        v = comp.get(name, {}).get(key)
        if v:
            out[name] = [round(v["value"], 3), round(v["ci_low"], 3), round(v["ci_high"], 3)]
    for name in ("gain_vs_covariates", "gain_vs_histology"):
        g = comp.get(name)
        if g:
            out[name] = [round(g["value"], 3), round(g["ci_low"], 3), round(g["ci_high"], 3), g.get("p_le_0")]
    if comp.get("importance"):
        out["importance"] = {k: round(v, 4) for k, v in comp["importance"]["mean"].items()}
    return out


def demo_oracle(tmp: Path) -> dict[str, Any]:
    from wsi_ssl.synthetic.cohort import HAZARD_BIOMARKER, HAZARD_TF, HAZARD_TF_CENTRE, plan_cohort

    out = {}
    for n, seed in ((40, 0), (2000, 0)):
        plans, outcomes = plan_cohort(
            tmp / "plan",
            n,
            seed=seed,
            width=4096,
            height=3072,
            mpp=0.5,
            levels=3,
            slides_per_patient=1,
            jpeg_quality=90,
            compression="jpeg",
        )
        rows = []
        for plan in plans:
            o = outcomes[plan.patient_id]
            assert o.clinical is not None
            slide = HAZARD_TF * (plan.tumor_fraction - HAZARD_TF_CENTRE) + HAZARD_BIOMARKER * o.biomarker
            rows.append((slide, o.clinical.log_hazard, o.time, o.event))
        a = np.asarray(rows)
        event = a[:, 3] > 0

        def c(risk: np.ndarray, event: np.ndarray = event, time: np.ndarray = a[:, 2]) -> float:
            return round(float(concordance_index_censored(event, time, risk)[0]), 3)

        out[f"seed{seed}_n{n}"] = {
            "events": int(event.sum()),
            "slide_part": c(a[:, 0]),
            "clinical_part": c(a[:, 1]),
            "whole": c(a[:, 0] + a[:, 1]),
            "sd_slide_part": round(float(a[:, 0].std()), 2),
            "sd_clinical_part": round(float(a[:, 1].std()), 2),
        }
    return out


def pipeline_run(run: Path) -> dict[str, Any]:
    """The ``comparison`` of every MIL run under RUN/mil (encoder/task) that has one."""
    out = {}
    for path in sorted(run.glob("**/metrics.json")):
        comp = json.loads(path.read_text()).get("comparison")
        if comp and "covariates_only" in comp:
            out[str(path.parent.relative_to(run))] = _summary(comp)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["gbsg2_cox", "gbsg2_half_risk", "demo_oracle", "none"], default=None)
    ap.add_argument("--run", type=Path, default=None, help="a pipeline run dir whose comparisons to print")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        for name, fn in (("gbsg2_cox", gbsg2_cox), ("gbsg2_half_risk", gbsg2_half_risk), ("demo_oracle", demo_oracle)):
            if args.only in (None, name):
                t0 = time.perf_counter()
                results[name] = fn(Path(d)) | {"seconds": round(time.perf_counter() - t0, 1)}
    if args.run is not None:
        results["pipeline"] = pipeline_run(args.run)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
