"""The one interface every MIL task kind implements: what a slide-level target is, end to end.

A :class:`Task` owns everything that depends on what is predicted: the slide table's target
columns and their checks (Contract 4), the numbers the targets become, the strata of the CV
splits, the head's width and the meaning of its outputs, the statistics fitted on a training
fold, the loss, the metrics, the prediction CSV's columns and the plots. The rest of
``wsi_ssl.mil`` asks the task (``get_task(cfg.task.kind)``) instead of comparing kind strings.

Tasks are stateless singletons: every setting comes in as an argument (the ``task:`` section of
the config, or the run's ``model.json`` as a dict), so one instance serves every run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TaskSettings(Protocol):
    """What a task reads of the ``task:`` section (:class:`wsi_ssl.mil.config.TaskConfig`).

    A protocol rather than the config class, so this interface does not import the config that
    validates ``task.kind`` against the task registry.
    """

    @property
    def kind(self) -> str: ...
    @property
    def label_column(self) -> str: ...
    @property
    def classes(self) -> list[str] | None: ...
    @property
    def class_weights(self) -> str | list[float]: ...
    @property
    def standardize_target(self) -> bool: ...
    @property
    def survival_loss(self) -> str: ...
    @property
    def ties(self) -> str: ...
    @property
    def cox_weighting(self) -> str: ...
    @property
    def n_bins(self) -> int: ...


class Task(ABC):
    """Base class: subclasses set ``kind`` and ``headline`` and register with ``@register_task``."""

    kind: ClassVar[str]
    headline: ClassVar[tuple[str, str]]  # (metric key, label): the figure a summary leads with
    # Prediction outputs that differ in meaning between fold models (survival bins), so they are
    # used per fold and never averaged into the ensemble or written out.
    fold_only_outputs: ClassVar[tuple[str, ...]] = ()
    missing_columns_hint: ClassVar[str] = ""  # appended to the "missing column(s)" error

    # --- config ---------------------------------------------------------------------------
    def check_config(self, cfg: TaskSettings) -> None:
        """Raise ValueError for settings this kind cannot use (called by the config's validator)."""
        if cfg.class_weights not in ("none", "balanced"):  # a list of per-class weights
            raise ValueError("task.class_weights is only for task.kind: classification")

    # --- the slide table (Contract 4) -----------------------------------------------------
    @abstractmethod
    def target_columns(self, cfg: TaskSettings) -> list[str]:
        """The table columns that hold the target (one patient's slides must agree on them)."""

    @abstractmethod
    def check_targets(self, df: pd.DataFrame, cfg: TaskSettings) -> list[str]:
        """Every problem with the target columns; converts them to their types in ``df`` in place."""

    def classes(self, df: pd.DataFrame, cfg: TaskSettings) -> list[str] | None:
        """The class order (classification only)."""
        return None

    @abstractmethod
    def target_array(self, df: pd.DataFrame, cfg: TaskSettings, classes: list[str] | None) -> np.ndarray:
        """One target per row as numbers: class index, float value, or [time, event]."""

    def stratum_counts(self, patients: pd.DataFrame, cfg: TaskSettings) -> pd.Series | None:
        """Patients per stratum (one row per patient), for the "fewer patients than folds" check;
        None when the kind stratifies on nothing the table can count up front."""
        return None

    # --- splits -----------------------------------------------------------------------------
    @abstractmethod
    def strata(self, targets: np.ndarray) -> np.ndarray:
        """A discrete label per bag that the CV splits are stratified on."""

    # --- the model --------------------------------------------------------------------------
    @abstractmethod
    def head_out_dim(self, n_classes: int, survival_loss: str, n_bins: int) -> int:
        """How many outputs the head has."""

    def meta_survival_loss(self, survival_loss: str) -> str | None:
        """The survival loss recorded in ``model.json`` (None for kinds without one)."""
        return None

    @abstractmethod
    def predictions(
        self, out: torch.Tensor, survival_loss: str | None, target_mean: float, target_std: float
    ) -> dict[str, torch.Tensor]:
        """Head outputs -> named predictions; every entry can be averaged across fold models."""

    # --- training ---------------------------------------------------------------------------
    def fitted_buffers(self, cfg: TaskSettings, meta: dict[str, Any], y: np.ndarray) -> dict[str, torch.Tensor]:
        """Model buffers fitted on the training fold's targets ``y`` (name -> value)."""
        return {}

    def class_weights(self, cfg: TaskSettings, meta: dict[str, Any], y: np.ndarray) -> torch.Tensor | None:
        """Per-class loss weights fitted on the training fold (classification only)."""
        return None

    def loss_target(self, y: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
        """The targets as the loss compares them with the head's outputs."""
        return y

    @abstractmethod
    def loss(
        self,
        survival_loss: str = "cox",
        ties: str = "efron",
        cox_weighting: str = "none",
        class_weights: torch.Tensor | None = None,
        bin_edges: torch.Tensor | None = None,
    ) -> LossFn:
        """The training loss: ``loss(head_output [B, out], target) -> scalar``."""

    # --- evaluation -------------------------------------------------------------------------
    # The metric a report recomputes on a slice of oof_predictions.csv (one fold, a bootstrap
    # resample), and its label; NaN when the slice cannot give it.
    fold_metric_label: ClassVar[str]

    @abstractmethod
    def fold_metric(self, predictions: pd.DataFrame) -> float:
        """The per-fold figure on rows of ``oof_predictions.csv``."""

    def eval_times(self, y: np.ndarray) -> np.ndarray | None:
        """Times at which survival curves are evaluated (survival only)."""
        return None

    def fold_info(
        self, meta: dict[str, Any], predict_train: Callable[[], dict[str, np.ndarray]], y_train: np.ndarray
    ) -> dict[str, Any]:
        """Extra entries for a fold's ``fold.json``, fitted on its training bags (a Cox baseline)."""
        return {}

    def fold_outputs(
        self,
        pred: dict[str, np.ndarray],
        meta: dict[str, Any],
        bin_edges: np.ndarray,
        fold_info: dict[str, Any],
        times: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        """Outputs one fold model adds to its predictions (survival probabilities at ``times``)."""
        return {}

    @abstractmethod
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
        """Every metric of the kind, with bootstrap CIs; ``pred`` as written to the predictions CSV.

        ``train_target``: the targets the models were trained on (survival: the censoring
        distribution of the IPCW metrics is estimated there); default the evaluated targets."""

    @abstractmethod
    def prediction_columns(
        self,
        df: pd.DataFrame,
        y: np.ndarray | None,
        pred: dict[str, np.ndarray],
        classes: list[str] | None,
        times: np.ndarray | None,
    ) -> None:
        """Add the target (when known) and prediction columns to a predictions frame, in place."""

    @abstractmethod
    def confidence_column(self, classes: list[str] | None) -> str:
        """The predictions column whose largest values are the strongest predictions."""

    @abstractmethod
    def plots(self, df: pd.DataFrame, classes: list[str] | None, out_dir: Path, prefix: str) -> dict[str, object]:
        """The plots that fit the kind, written under ``out_dir``; returns what was written."""
