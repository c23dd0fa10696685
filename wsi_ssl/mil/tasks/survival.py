"""``survival``: a right-censored time to event per bag, with a Cox or a discrete-time loss.

Targets: ``time`` (>= 0) and ``event`` (1 event, 0 censored) columns, as [time, event] rows.
``task.survival_loss``:
- ``cox``: one output, the log relative hazard (the risk); the loss is the Cox partial
  likelihood over the batch (Efron or Breslow ties, optionally balanced event weights); survival
  curves come from a Breslow baseline fitted on each fold's training bags (``fold.json``).
- ``discrete``: ``task.n_bins`` hazard logits over quantile bins of the training fold's event
  times (the model's ``bin_edges`` buffer); the loss is the discrete-time hazard NLL; the risk
  is minus the summed per-bin survival.
Metrics: Harrell's C, Uno's C, time-dependent AUC and the integrated Brier score at event-time
percentiles (:func:`wsi_ssl.mil.metrics.survival_metrics`); plot: Kaplan-Meier of the predicted
low- and high-risk halves. Splits are stratified on the event indicator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from wsi_ssl.mil.heads import discrete_survival
from wsi_ssl.mil.losses import (
    balanced_event_weights,
    cox_nll,
    discrete_nll,
    fit_time_bins,
)
from wsi_ssl.mil.survival import breslow_baseline, cox_survival, discrete_survival_at
from wsi_ssl.mil.tasks.base import LossFn, Task, TaskSettings
from wsi_ssl.mil.tasks.registry import register_task

CURVES = "survival"  # per-bin survival of the discrete loss: its bins differ between fold models


@register_task
class Survival(Task):
    kind = "survival"
    headline = ("c_index", "C-index")
    fold_metric_label = "C-index"

    def fold_metric(self, predictions: pd.DataFrame) -> float:
        """Harrell's C of the predicted risk (NaN without an event or a comparable pair)."""
        from sksurv.metrics import concordance_index_censored

        event = predictions["event"].to_numpy().astype(bool)
        if not event.any():
            return float("nan")
        try:
            with np.errstate(invalid="ignore", divide="ignore"):  # no comparable pair: 0/0, NaN below
                c = concordance_index_censored(
                    event, predictions["time"].to_numpy(float), predictions["risk"].to_numpy(float)
                )
        except ValueError:  # no comparable pair (a tiny fold or resample): undefined, not an error
            return float("nan")
        return float(c[0])

    fold_only_outputs = (CURVES,)
    missing_columns_hint = " (a survival task needs 'time' and 'event')"

    def target_columns(self, cfg: TaskSettings) -> list[str]:
        return ["time", "event"]

    def check_targets(self, df: pd.DataFrame, cfg: TaskSettings) -> list[str]:
        problems: list[str] = []
        time = pd.to_numeric(df["time"], errors="coerce")
        event = pd.to_numeric(df["event"], errors="coerce")
        if time.isna().any() or (time < 0).any():
            problems.append(f"'time' must be a non-negative number in every row ({int(time.isna().sum())} missing)")
        if event.isna().any() or not event.dropna().isin([0, 1]).all():
            problems.append("'event' must be 1 (event) or 0 (censored) in every row")
        if not problems and event.sum() == 0:
            problems.append("no events at all: a survival model cannot be fitted")
        df["time"], df["event"] = time.astype(float), event.fillna(0).astype(int)
        return problems

    def target_array(self, df: pd.DataFrame, cfg: TaskSettings, classes: list[str] | None) -> np.ndarray:
        return df[["time", "event"]].to_numpy(dtype=np.float64)

    def stratum_counts(self, patients: pd.DataFrame, cfg: TaskSettings) -> pd.Series | None:
        return patients["event"].map({1: "event", 0: "censored"}).value_counts()

    def strata(self, targets: np.ndarray) -> np.ndarray:
        return targets[:, 1].astype(int)

    def head_out_dim(self, n_classes: int, survival_loss: str, n_bins: int) -> int:
        return n_bins if survival_loss == "discrete" else 1

    def meta_survival_loss(self, survival_loss: str) -> str | None:
        return survival_loss

    def predictions(
        self, out: torch.Tensor, survival_loss: str | None, target_mean: float, target_std: float
    ) -> dict[str, torch.Tensor]:
        if survival_loss == "discrete":
            surv = discrete_survival(out)
            return {CURVES: surv, "risk": -surv.sum(dim=-1)}
        return {"risk": out[..., 0]}

    def fitted_buffers(self, cfg: TaskSettings, meta: dict[str, Any], y: np.ndarray) -> dict[str, torch.Tensor]:
        if meta.get("survival_loss") != "discrete":
            return {}
        return {"bin_edges": torch.from_numpy(fit_time_bins(y[:, 0], y[:, 1], meta["n_bins"])).float()}

    def loss(
        self,
        survival_loss: str = "cox",
        ties: str = "efron",
        cox_weighting: str = "none",
        class_weights: torch.Tensor | None = None,
        bin_edges: torch.Tensor | None = None,
    ) -> LossFn:
        if survival_loss == "discrete":
            if bin_edges is None:
                raise ValueError("the discrete-time loss needs bin edges fitted on the training fold")
            edges = bin_edges
            return lambda out, y: discrete_nll(out, y[:, 0], y[:, 1], edges.to(out.device))

        def cox(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            w = balanced_event_weights(y[:, 1]) if cox_weighting == "balanced" else None
            return cox_nll(out[:, 0], y[:, 0], y[:, 1], ties=ties, weights=w)

        return cox

    def eval_times(self, y: np.ndarray) -> np.ndarray | None:
        from wsi_ssl.mil.metrics import eval_times

        return eval_times(y[:, 0], y[:, 1])

    def fold_info(
        self, meta: dict[str, Any], predict_train: Callable[[], dict[str, np.ndarray]], y_train: np.ndarray
    ) -> dict[str, Any]:
        if meta.get("survival_loss") == "discrete":
            return {}  # the curves come from the model's own bins
        risk = predict_train()["risk"]
        t, h = breslow_baseline(risk, y_train[:, 0], y_train[:, 1])
        # The partial likelihood ignores a constant added to every risk, so each fold model's risks
        # sit at an arbitrary level (the head's bias drifts under Adam on a zero gradient); pooled
        # out-of-fold C-indexes and fold ensembles compare risks across folds, so they are centred
        # on the training fold's mean.
        return {"baseline_times": t.tolist(), "baseline_cumhaz": h.tolist(), "risk_offset": float(np.mean(risk))}

    def fold_outputs(
        self,
        pred: dict[str, np.ndarray],
        meta: dict[str, Any],
        bin_edges: np.ndarray,
        fold_info: dict[str, Any],
        times: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if times is not None and meta.get("survival_loss") == "discrete":
            out["survival_at_times"] = discrete_survival_at(pred[CURVES], bin_edges, times)
        elif times is not None:  # S(t) from the risk the baseline was fitted with, before centring
            base_t, base_h = np.asarray(fold_info["baseline_times"]), np.asarray(fold_info["baseline_cumhaz"])
            out["survival_at_times"] = cox_survival(pred["risk"], times, base_t, base_h)
        if "risk_offset" in fold_info:  # Cox: centred on the training fold (fold_info)
            out["risk"] = pred["risk"] - fold_info["risk_offset"]
        return out

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
        """As the base; the IPCW metrics weight by the censoring distribution of ``train_target``.

        A metric that cannot be computed on the evaluated rows (a cohort whose follow-up ends on a
        date, a fold without events) is NaN with the reason under ``missing``; it never stops a run.
        """
        from wsi_ssl.mil.metrics import bootstrap_ci, survival_metrics

        time, event = target[:, 0], target[:, 1]
        train = (train_target[:, 0], train_target[:, 1]) if train_target is not None else None
        surv = pred.get("survival_at_times")
        missing: dict[str, str] = {}
        point = survival_metrics(time, event, pred["risk"], surv, times, train, missing)  # with the reasons
        result: dict[str, dict[str, Any]] = bootstrap_ci(
            lambda i: survival_metrics(
                time[i], event[i], pred["risk"][i], None if surv is None else surv[i], times, train
            ),
            len(target),
            n_boot,
            ci,
            seed,
            point,
        )
        for name, why in missing.items():
            result.setdefault(
                name, {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n_boot": 0}
            )
            result[name]["missing"] = why
        return result

    def prediction_columns(
        self,
        df: pd.DataFrame,
        y: np.ndarray | None,
        pred: dict[str, np.ndarray],
        classes: list[str] | None,
        times: np.ndarray | None,
    ) -> None:
        if y is not None:
            df["time"], df["event"] = y[:, 0], y[:, 1].astype(int)
        df["risk"] = pred["risk"]
        if times is not None and "survival_at_times" in pred:
            for j, t in enumerate(times):
                df[f"surv@{t:g}"] = pred["survival_at_times"][:, j]

    def confidence_column(self, classes: list[str] | None) -> str:
        return "risk"

    def plots(self, df: pd.DataFrame, classes: list[str] | None, out_dir: Path, prefix: str) -> dict[str, object]:
        from wsi_ssl.mil.plots import km_plot

        if "time" not in df:
            return {}
        path, p = km_plot(df, out_dir / f"{prefix}_km.png")
        return {"km": str(path), "logrank_p": p}
