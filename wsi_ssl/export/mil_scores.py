"""Per-tile measurements from a trained MIL run, for every task (classification, regression,
survival).

Two kinds, both through the run's fold ensemble (``wsi_ssl.mil.loading``):

- ``attention``: the aggregator's instance scores over the whole slide bag (attention models; the
  same scores ``mil/heatmaps.py`` paints), i.e. where the model looked;
- the model's prediction for each tile alone (a bag of one tile): ``prob <class>`` per class,
  ``value`` (regression) or ``risk`` (survival), i.e. what each region says on its own. Models
  trained with covariates/omics get their learned "missing" embedding here, as in ``predict``.

Scores are matched to tiles by their level-0 coordinates (feature files carry the coords of the
tile store they were embedded from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsi_ssl.stores.features import feature_path, read_features

_CHUNK = 4096  # tiles scored at once as single-tile bags


class MilScorer:
    """A run's ensemble, loaded once, scoring slide after slide."""

    def __init__(self, run_dir: str | Path) -> None:
        from wsi_ssl.mil.loading import load_mil_model

        self.ensemble, self.meta = load_mil_model(run_dir)
        self.classes: list[str] | None = self.meta.get("classes")

    @torch.no_grad()
    def tile_scores(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Named [N] arrays for one slide's tile features [N, D]."""
        out: dict[str, np.ndarray] = {}
        whole = self.ensemble.predict_bag(features)
        if "scores" in whole:
            out["attention"] = whole["scores"].float().cpu().numpy().reshape(-1)
        parts: dict[str, list[np.ndarray]] = {}
        x_all = torch.as_tensor(np.asarray(features, dtype=np.float32))
        for start in range(0, len(x_all), _CHUNK):
            x = x_all[start : start + _CHUNK].unsqueeze(1)  # N bags of one tile
            pred = self.ensemble(x, torch.ones(x.shape[:2], dtype=torch.bool))
            for key, value in pred.items():
                if key != "scores":
                    parts.setdefault(key, []).append(value.float().cpu().numpy())
        for key, chunks in parts.items():
            arr = np.concatenate(chunks)
            if key == "prob" and arr.ndim == 2:
                names = self.classes or [str(i) for i in range(arr.shape[1])]
                for j, name in enumerate(names):
                    out[f"prob {name}"] = arr[:, j]
            elif arr.ndim == 1:
                out[key] = arr
        return out


def scores_on_tiles(
    scorer: MilScorer, features_dir: str | Path, slide_id: str, coords: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-tile scores aligned to ``coords`` (NaN where a tile has no feature row) and a summary."""
    ff = read_features(feature_path(features_dir, slide_id))
    scores = scorer.tile_scores(ff.features)
    index = {(int(x), int(y)): i for i, (x, y) in enumerate(ff.coords)}
    rows = np.array([index.get((int(x), int(y)), -1) for x, y in coords], dtype=np.int64)
    aligned = {}
    for key, values in scores.items():
        col = np.full(len(coords), np.nan, np.float64)
        col[rows >= 0] = values[rows[rows >= 0]]
        aligned[key] = col
    return aligned, {"matched_tiles": int((rows >= 0).sum()), "feature_rows": len(ff.coords)}
