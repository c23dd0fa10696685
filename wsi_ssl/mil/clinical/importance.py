"""Which covariates matter: permutation importance of the fused model, per fold.

For each fold model and each covariate (and the omics as one block), the covariate's raw
columns are shuffled among the fold's held-out bags, the bags are predicted again, and the drop
of the task's per-slice score (``Task.fold_metric``: C-index, AUROC, Pearson r) is recorded,
averaged over ``repeats`` shuffles. Held-out bags only: the model never saw them, so a covariate
the model merely memorised gets no credit. The tiles are untouched, so this measures what the
covariate adds beside the slide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.clinical.tables import SideSpec
from wsi_ssl.mil.model import MILModel
from wsi_ssl.mil.tasks import get_task


def _blocks(spec: SideSpec) -> dict[str, np.ndarray]:
    groups = spec.groups()
    out = {c.name: np.flatnonzero(groups == g) for g, c in enumerate(spec.covariates)}
    if spec.omics_features:
        out["omics"] = np.arange(spec.cov_width, spec.width)
    return out


def permutation_importance(
    model: MILModel,
    meta: dict[str, Any],
    bags: Sequence[Bag],
    spec: SideSpec,
    repeats: int,
    batch_size: int,
    seed: int = 0,
) -> dict[str, float]:
    """Mean drop of the fold score when each covariate block is shuffled among ``bags``."""
    from wsi_ssl.mil.cv import prediction_frame
    from wsi_ssl.mil.train import predict_bags

    task = get_task(meta["task"])

    def score(side: np.ndarray) -> float:
        shuffled = [
            Bag(b.key, b.patient_id, b.features, b.target, b.slide_ids, side=side[i]) for i, b in enumerate(bags)
        ]
        pred = predict_bags(model, shuffled, batch_size)
        return float(task.fold_metric(prediction_frame(meta, shuffled, pred, None)))

    sides = np.stack([np.asarray(b.side) for b in bags])
    base = score(sides)
    rng = np.random.default_rng(seed)
    result: dict[str, float] = {}
    for name, cols in _blocks(spec).items():
        drops = []
        for _ in range(repeats):
            perm = sides.copy()
            perm[:, cols] = sides[rng.permutation(len(bags))][:, cols]
            drops.append(base - score(perm))
        result[name] = float(np.nanmean(drops)) if drops else float("nan")
    return result
