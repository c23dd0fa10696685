"""``regression``: one number per bag.

Targets: a numeric column. Head: one value in standardized units when
``task.standardize_target`` (z-scored with the training fold's mean and std, kept in the model's
buffers so predictions come out in the column's units). Loss: mean squared error. Metrics: R2,
Pearson r, MAE (:func:`wsi_ssl.mil.metrics.regression_metrics`); plot: predicted vs true.
Splits are stratified on quartiles of the target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from wsi_ssl.mil.tasks.base import LossFn, Task, TaskSettings
from wsi_ssl.mil.tasks.registry import register_task

N_QUANTILES = 4  # strata for the CV splits


@register_task
class Regression(Task):
    kind = "regression"
    headline = ("r2", "R2")
    fold_metric_label = "Pearson r"

    def fold_metric(self, predictions: pd.DataFrame) -> float:
        """Pearson's r of prediction and target (NaN under three rows)."""
        from scipy.stats import pearsonr

        if len(predictions) <= 2:
            return float("nan")
        return float(pearsonr(predictions["target"], predictions["pred"])[0])

    def target_columns(self, cfg: TaskSettings) -> list[str]:
        return [cfg.label_column]

    def check_targets(self, df: pd.DataFrame, cfg: TaskSettings) -> list[str]:
        problems: list[str] = []
        y = pd.to_numeric(df[cfg.label_column], errors="coerce")
        if y.isna().any():
            problems.append(f"column {cfg.label_column!r} must be numeric in every row ({int(y.isna().sum())} missing)")
        df[cfg.label_column] = y.astype(float)
        return problems

    def target_array(self, df: pd.DataFrame, cfg: TaskSettings, classes: list[str] | None) -> np.ndarray:
        return df[cfg.label_column].to_numpy(dtype=np.float64)

    def strata(self, targets: np.ndarray) -> np.ndarray:
        edges = np.quantile(targets, np.linspace(0, 1, N_QUANTILES + 1)[1:-1])
        return np.searchsorted(edges, targets, side="right")

    def head_out_dim(self, n_classes: int, survival_loss: str, n_bins: int) -> int:
        return 1

    def predictions(
        self, out: torch.Tensor, survival_loss: str | None, target_mean: float, target_std: float
    ) -> dict[str, torch.Tensor]:
        return {"value": out[..., 0] * target_std + target_mean}

    def fitted_buffers(self, cfg: TaskSettings, meta: dict[str, Any], y: np.ndarray) -> dict[str, torch.Tensor]:
        if not cfg.standardize_target:
            return {}
        return {
            "target_mean": torch.tensor(float(y.mean())),
            "target_std": torch.tensor(float(y.std()) if y.std() > 0 else 1.0),
        }

    def loss_target(self, y: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
        return (y - target_mean) / target_std

    def loss(
        self,
        survival_loss: str = "cox",
        ties: str = "efron",
        cox_weighting: str = "none",
        class_weights: torch.Tensor | None = None,
        bin_edges: torch.Tensor | None = None,
    ) -> LossFn:
        return lambda out, y: F.mse_loss(out[:, 0], y)

    def metrics(
        self,
        target: np.ndarray,
        pred: dict[str, np.ndarray],
        n_boot: int = 1000,
        ci: float = 0.95,
        times: np.ndarray | None = None,
        seed: int = 0,
        train_target: np.ndarray | None = None,
    ) -> dict[str, dict[str, Any]]:
        from wsi_ssl.mil.metrics import bootstrap_ci, regression_metrics

        return bootstrap_ci(lambda i: regression_metrics(target[i], pred["value"][i]), len(target), n_boot, ci, seed)

    def prediction_columns(
        self,
        df: pd.DataFrame,
        y: np.ndarray | None,
        pred: dict[str, np.ndarray],
        classes: list[str] | None,
        times: np.ndarray | None,
    ) -> None:
        if y is not None:
            df["target"] = y
        df["pred"] = pred["value"]

    def confidence_column(self, classes: list[str] | None) -> str:
        return "pred"

    def plots(self, df: pd.DataFrame, classes: list[str] | None, out_dir: Path, prefix: str) -> dict[str, object]:
        from wsi_ssl.mil.plots import regression_plot

        if "target" in df:
            return {"scatter": str(regression_plot(df, out_dir / f"{prefix}_scatter.png"))}
        return {}
