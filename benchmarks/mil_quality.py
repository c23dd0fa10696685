"""Real-data quality bars for ``wsi_ssl.mil`` (issue 5), run outside the test suite.

MUSK1 / MUSK2: 10-fold CV accuracy of gated attention MIL, repeated over seeds (the
attention-MIL paper reports 0.900 / 0.863; a mean+max pooled logistic regression 0.849 / 0.804).
GBSG2: each patient a bag of one instance (its covariates), mean pooling, no projection and a
Cox head (so the model is a linear Cox model fitted by gradient descent), 5-fold CV; Harrell's C
per fold against scikit-survival's CoxPHSurvivalAnalysis fitted on exactly the same folds and
the same training-fold standardization.

    nice -n 10 .venv/bin/python benchmarks/mil_quality.py            # everything
    nice -n 10 .venv/bin/python benchmarks/mil_quality.py --only musk --seeds 5
    nice -n 10 .venv/bin/python benchmarks/mil_quality.py --only gbsg2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import run_cv
from wsi_ssl.mil.model import model_meta

ROOT = Path(__file__).resolve().parents[1]
MUSK_DIR = ROOT.parent / "shared" / "data" / "mil"

MUSK_CFG = {
    "task": {"kind": "classification"},
    "aggregator": {"kind": "abmil", "gated": True, "hidden_dim": 128, "attn_dim": 64, "dropout": 0.25},
    "data": {"batch_size": 4, "normalize_features": True, "max_instances_train": None},
    "train": {"epochs": 60, "lr": 5e-4, "weight_decay": 5e-3, "patience": 15, "val_fraction": 0.0},
    "eval": {"folds": 10, "bootstrap": 0},
}

GBSG2_CFG = {
    "task": {"kind": "survival", "survival_loss": "cox", "ties": "efron"},
    "aggregator": {"kind": "mean", "hidden_dim": 0, "dropout": 0.0},
    "data": {"batch_size": 4096, "normalize_features": True},
    "train": {"epochs": 400, "lr": 0.05, "weight_decay": 0.0, "val_fraction": 0.0},
    "eval": {"folds": 5, "bootstrap": 0},
}


def musk_bags(name: str) -> list[Bag]:
    df = pd.read_csv(MUSK_DIR / f"{name}.csv", header=None)
    bags = []
    for bag_id, rows in df.groupby(1, sort=False):
        feats = rows.iloc[:, 2:].to_numpy(np.float32)
        bags.append(
            Bag(
                key=str(bag_id),
                patient_id=str(bag_id),
                features=feats,
                target=np.asarray(int(rows[0].iloc[0])),
                slide_ids=[str(bag_id)],
            )
        )
    return bags


def run_musk(name: str, seeds: int, out: Path) -> dict[str, float]:
    bags = musk_bags(name)
    accs = []
    for seed in range(seeds):
        cfg = MilConfig.model_validate({**MUSK_CFG, "train": {**MUSK_CFG["train"], "seed": seed}})
        meta = model_meta(bags[0].features.shape[1], cfg.aggregator, "classification", ["0", "1"], "cox", 0)
        res = run_cv(cfg, meta, bags, out / f"{name}_seed{seed}")
        accs.append(res.metrics["oof"]["accuracy"]["value"])
        print(
            f"{name} seed {seed}: 10-fold accuracy {accs[-1]:.3f}  AUROC {res.metrics['oof']['auroc']['value']:.3f}",
            flush=True,
        )
    return {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)), "per_seed": accs}


def gbsg2_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sksurv.datasets import load_gbsg2
    from sksurv.preprocessing import OneHotEncoder

    x, y = load_gbsg2()
    x = OneHotEncoder().fit_transform(x)
    return x.to_numpy(np.float64), np.stack([y["time"], y["cens"].astype(float)], axis=1)


def run_gbsg2(out: Path) -> dict[str, float]:
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.metrics import concordance_index_censored

    x, y = gbsg2_arrays()
    bags = [
        Bag(key=str(i), patient_id=str(i), features=x[i : i + 1].astype(np.float32), target=y[i], slide_ids=[str(i)])
        for i in range(len(x))
    ]
    cfg = MilConfig.model_validate(GBSG2_CFG)
    meta = model_meta(x.shape[1], cfg.aggregator, "survival", None, "cox", 0)
    res = run_cv(cfg, meta, bags, out / "gbsg2")
    ours, ref = [], []
    for f in sorted(res.oof["fold"].unique()):
        test = np.flatnonzero(res.oof["fold"].to_numpy() == f)
        train = np.setdiff1d(np.arange(len(x)), test)
        mu, sd = x[train].mean(0), x[train].std(0)
        sd[sd == 0] = 1
        cox = CoxPHSurvivalAnalysis(ties="efron").fit((x[train] - mu) / sd, _surv(y[train]))
        risk_ref = cox.predict((x[test] - mu) / sd)
        ev, t = y[test, 1].astype(bool), y[test, 0]
        ref.append(concordance_index_censored(ev, t, risk_ref)[0])
        ours.append(concordance_index_censored(ev, t, res.oof["risk"].to_numpy()[test])[0])
        print(f"gbsg2 fold {f}: C ours {ours[-1]:.4f}  sksurv CoxPH {ref[-1]:.4f}", flush=True)
    return {
        "c_mean_ours": float(np.mean(ours)),
        "c_mean_coxph": float(np.mean(ref)),
        "max_abs_fold_diff": float(np.max(np.abs(np.subtract(ours, ref)))),
        "pooled_oof_c_ours": res.metrics["oof"]["c_index"]["value"],
    }


def _surv(y: np.ndarray) -> np.ndarray:
    from sksurv.util import Surv

    return Surv.from_arrays(event=y[:, 1].astype(bool), time=y[:, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["musk", "gbsg2"], default=None)
    ap.add_argument("--seeds", type=int, default=5, help="repetitions of 10-fold CV on MUSK")
    ap.add_argument("--out", type=Path, default=None, help="keep run dirs here (default: a temp dir)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        started = time.perf_counter()
        if args.only in (None, "musk"):
            for name in ("musk1", "musk2"):
                results[name] = run_musk(name, args.seeds, out)
        if args.only in (None, "gbsg2"):
            results["gbsg2"] = run_gbsg2(out)
        results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
