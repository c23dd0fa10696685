"""Is the planted signal learnable? A floor measured with random filters, no training.

    python -m wsi_ssl.synthetic.signal_check DIR      # DIR holds slides.csv from demo-cohort

Every tissue tile (224 px at level 0, tissue from the truth) goes through a randomly
initialised 4-layer CNN; the per-channel mean and standard deviation of its last feature map
are mean-pooled per slide; then 5-fold out-of-fold logistic regression (PCA 8) gives the
biomarker AUROC and a Cox model (PCA 4) the survival C-index. A trained encoder should beat
these numbers; if they are low, the cohort is too hard, not the encoder too weak. Needs torch
and scikit-survival (imported inside the functions so the package stays light).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import tifffile

from wsi_ssl.synthetic.truth import BACKGROUND, tile_labels, truth_path_for


def slide_features(slide: Path, tile: int = 224, seed: int = 0) -> np.ndarray:
    """Mean-pooled random-CNN features of all tissue tiles of one slide."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 5, 2, 2), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, 2, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, 2, 1), torch.nn.ReLU(),
    )  # fmt: skip
    image = tifffile.imread(slide, key=0)
    h, w = image.shape[:2]
    xs, ys = np.meshgrid(np.arange(0, w - tile + 1, tile), np.arange(0, h - tile + 1, tile))
    coords = np.stack([xs.ravel(), ys.ravel()], axis=1)
    coords = coords[tile_labels(truth_path_for(slide), coords, tile) != BACKGROUND]
    if len(coords) == 0:
        raise ValueError(f"{slide}: no tissue tiles of {tile} px")
    feats = []
    with torch.no_grad():
        for start in range(0, len(coords), 64):
            batch = np.stack([image[y : y + tile, x : x + tile] for x, y in coords[start : start + 64]])
            fmap = net(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255 - 0.5)
            feats.append(torch.cat([fmap.mean((2, 3)), fmap.std((2, 3))], 1).numpy())
    return np.concatenate(feats).mean(axis=0)


def check(cohort_dir: str | Path, folds: int = 5) -> dict[str, float]:
    """Out-of-fold biomarker AUROC and survival C-index from random-CNN slide features."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.metrics import concordance_index_censored

    cohort_dir = Path(cohort_dir)
    with open(cohort_dir / "slides.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    x = np.stack([slide_features(cohort_dir / r["path"]) for r in rows])
    y = np.array([int(r["biomarker"]) for r in rows])
    time = np.array([float(r["time"]) for r in rows])
    event = np.array([int(r["event"]) for r in rows], dtype=bool)
    tf = np.array([float(r["tumor_fraction"]) for r in rows])
    surv = np.array(list(zip(event, time)), dtype=[("event", bool), ("time", float)])
    prob, risk = np.zeros(len(rows)), np.zeros(len(rows))
    n_pca = min(8, len(rows) - len(rows) // folds - 1)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        clf = make_pipeline(StandardScaler(), PCA(n_pca), LogisticRegression(max_iter=1000))
        prob[test] = clf.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        reduce = make_pipeline(StandardScaler(), PCA(min(4, n_pca))).fit(x[train])
        cox = CoxPHSurvivalAnalysis(alpha=0.1).fit(reduce.transform(x[train]), surv[train])
        risk[test] = cox.predict(reduce.transform(x[test]))
    return {
        "slides": float(len(rows)),
        "biomarker_auroc": float(roc_auc_score(y, prob)),
        "c_index": float(concordance_index_censored(event, time, risk)[0]),
        "c_index_true_tumor_fraction": float(concordance_index_censored(event, time, tf)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cohort_dir", type=Path, help="folder with slides.csv written by wsi-ssl demo-cohort")
    args = parser.parse_args()
    result = check(args.cohort_dir)
    print(" ".join(f"{k}={v:.3f}" if k != "slides" else f"{k}={int(v)}" for k, v in result.items()))


if __name__ == "__main__":
    main()
