"""``classification``: one class label per bag (binary is two classes: one code path serves both).

Targets: a class column whose values become class indices in ``task.classes`` order (sorted
distinct labels, numbers in numeric order, when not given). Head: C logits; predictions: softmax
probabilities (fold models are averaged in probability space). Loss: cross-entropy, optionally
class-weighted (``balanced``: n / (C * n_c) from the training fold). Metrics: AUROC, balanced
accuracy, F1, accuracy (:func:`wsi_ssl.mil.metrics.classification_metrics`); plot: ROC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from wsi_ssl.config import ConfigError
from wsi_ssl.mil.tasks.base import LossFn, Task, TaskSettings
from wsi_ssl.mil.tasks.registry import register_task


def label_str(value: object) -> str:
    """Class labels as strings; 1.0 read from a CSV with gaps becomes '1', not '1.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _natural_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


@register_task
class Classification(Task):
    kind = "classification"
    headline = ("auroc", "AUROC")
    fold_metric_label = "AUROC"

    def fold_metric(self, predictions: pd.DataFrame) -> float:
        """AUROC of the last class against the rest (binary), or one-vs-rest macro (several classes)."""
        from sklearn.metrics import roc_auc_score

        df = predictions
        probs = [c for c in df.columns if c.startswith("prob_")]
        y = (df["target"].astype(str) == probs[-1][len("prob_") :]).astype(int)
        if y.nunique() < 2:
            return float("nan")
        if len(probs) == 2:
            return float(roc_auc_score(y, df[probs[-1]]))
        return float(
            roc_auc_score(
                df["target"].astype(str), df[probs].to_numpy(), multi_class="ovr", labels=[c[5:] for c in probs]
            )
        )

    def check_config(self, cfg: TaskSettings) -> None:
        pass  # class weights, the one classification-only setting, are allowed here

    def target_columns(self, cfg: TaskSettings) -> list[str]:
        return [cfg.label_column]

    def check_targets(self, df: pd.DataFrame, cfg: TaskSettings) -> list[str]:
        problems: list[str] = []
        col = df[cfg.label_column]
        if col.isna().any():
            problems.append(f"column {cfg.label_column!r} is empty in {int(col.isna().sum())} row(s)")
        labels = col.dropna().map(label_str)
        df[cfg.label_column] = col.map(label_str)
        if cfg.classes is not None:
            unknown = sorted(set(labels) - set(cfg.classes))
            if unknown:
                problems.append(f"labels {unknown} in {cfg.label_column!r} are not in task.classes {cfg.classes}")
        elif labels.nunique() < 2:
            problems.append(f"column {cfg.label_column!r} needs at least 2 classes, found {sorted(set(labels))}")
        return problems

    def classes(self, df: pd.DataFrame, cfg: TaskSettings) -> list[str] | None:
        if cfg.classes is not None:
            return list(cfg.classes)
        return sorted(set(df[cfg.label_column].astype(str)), key=_natural_key)

    def target_array(self, df: pd.DataFrame, cfg: TaskSettings, classes: list[str] | None) -> np.ndarray:
        index = {c: i for i, c in enumerate(classes or [])}
        return df[cfg.label_column].astype(str).map(index).to_numpy(dtype=np.int64)

    def stratum_counts(self, patients: pd.DataFrame, cfg: TaskSettings) -> pd.Series | None:
        return patients[cfg.label_column].value_counts()

    def strata(self, targets: np.ndarray) -> np.ndarray:
        return targets.astype(int)

    def head_out_dim(self, n_classes: int, survival_loss: str, n_bins: int) -> int:
        return n_classes

    def predictions(
        self, out: torch.Tensor, survival_loss: str | None, target_mean: float, target_std: float
    ) -> dict[str, torch.Tensor]:
        return {"prob": torch.softmax(out, dim=-1)}

    def class_weights(self, cfg: TaskSettings, meta: dict[str, Any], y: np.ndarray) -> torch.Tensor | None:
        if cfg.class_weights == "none":
            return None
        n_classes = len(meta["classes"])
        if cfg.class_weights == "balanced":
            counts = np.bincount(y.astype(int), minlength=n_classes).astype(float)
            return torch.tensor(len(y) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
        if len(cfg.class_weights) != n_classes:
            raise ConfigError(
                f"task.class_weights has {len(cfg.class_weights)} values for {n_classes} classes {meta['classes']}"
            )
        return torch.tensor(cfg.class_weights, dtype=torch.float32)

    def loss(
        self,
        survival_loss: str = "cox",
        ties: str = "efron",
        cox_weighting: str = "none",
        class_weights: torch.Tensor | None = None,
        bin_edges: torch.Tensor | None = None,
    ) -> LossFn:
        return lambda out, y: F.cross_entropy(
            out, y, weight=None if class_weights is None else class_weights.to(out.device)
        )

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
        from wsi_ssl.mil.metrics import bootstrap_ci, classification_metrics

        return bootstrap_ci(lambda i: classification_metrics(target[i], pred["prob"][i]), len(target), n_boot, ci, seed)

    def prediction_columns(
        self,
        df: pd.DataFrame,
        y: np.ndarray | None,
        pred: dict[str, np.ndarray],
        classes: list[str] | None,
        times: np.ndarray | None,
    ) -> None:
        classes = classes or []
        if y is not None:
            df["target"] = [classes[int(v)] for v in y]
        for j, c in enumerate(classes):
            df[f"prob_{c}"] = pred["prob"][:, j]
        df["pred"] = [classes[int(i)] for i in pred["prob"].argmax(axis=1)]

    def confidence_column(self, classes: list[str] | None) -> str:
        if not classes:
            raise ValueError("a classification run without classes has no probability columns")
        return f"prob_{classes[-1]}"  # the positive class of a binary task

    def plots(self, df: pd.DataFrame, classes: list[str] | None, out_dir: Path, prefix: str) -> dict[str, object]:
        from wsi_ssl.mil.plots import roc_plot

        if classes and "target" in df:
            return {"roc": str(roc_plot(df, classes, out_dir / f"{prefix}_roc.png"))}
        return {}
