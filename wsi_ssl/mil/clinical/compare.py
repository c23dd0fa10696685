"""Covariates-only, histology-only and fused models on the same folds: metrics.json's ``comparison``.

Run after the fused model's cross-validation (``wsi-ssl mil train`` with ``data.covariates`` or
``data.omics``, ``eval.compare: true``). The folds are the fused run's (its ``fold`` column), so
every model is scored on exactly the same held-out bags:

- ``covariates_only``: :mod:`.baseline` fitted on each training fold;
- ``histology_only``: the same MIL config with ``model.fusion: none``, trained into
  ``<run>/comparison/histology_only`` (a full run dir; it resumes like any run);
- ``fused``: the run's own out-of-fold metrics;
- ``gain_vs_covariates`` / ``gain_vs_histology``: paired bootstrap of fused minus each;
- ``importance``: permutation importance of each covariate (and the omics) per fold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.clinical.baseline import design, fit_predict
from wsi_ssl.mil.clinical.importance import permutation_importance
from wsi_ssl.mil.clinical.tables import SideSpec
from wsi_ssl.mil.comparison import add_entry, add_gain, comparison
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import CVResult, prediction_frame, run_cv
from wsi_ssl.mil.tasks import get_task

log = logging.getLogger(__name__)


def covariates_only(
    cfg: MilConfig,
    meta: dict[str, Any],
    bags: Sequence[Bag],
    spec: SideSpec,
    fold_of: np.ndarray,
    times: np.ndarray | None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[dict[str, Any]]]:
    """Out-of-fold predictions of the covariates-only model on the given folds."""
    raw = np.stack([np.asarray(b.side) for b in bags])
    y = np.stack([np.asarray(b.target) for b in bags])
    n_classes = len(meta.get("classes") or [])
    oof: dict[str, np.ndarray] = {}
    info = []
    for k in sorted(set(fold_of.tolist())):
        test = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        x_train, x_test = design(spec, raw[train], [raw[train], raw[test]])
        pred, fitted = fit_predict(meta["task"], x_train, y[train], x_test, n_classes, times, cfg.train.seed + int(k))
        for name, v in pred.items():
            oof.setdefault(name, np.zeros((len(bags),) + v.shape[1:]))[test] = v
        info.append({"fold": int(k), **fitted, "n_features": int(x_train.shape[1])})
    return prediction_frame(meta, bags, oof, times, fold_of), oof, info


def add_comparison(
    cfg: MilConfig,
    meta: dict[str, Any],
    bags: Sequence[Bag],
    result: CVResult,
    run_dir: Path,
    spec: SideSpec,
    predefined: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fill ``result.metrics['comparison']`` (the caller writes metrics.json)."""
    task = get_task(meta["task"])
    y = np.stack([np.asarray(b.target) for b in bags])
    times = task.eval_times(y)
    fold_of = result.oof["fold"].to_numpy()
    ev = cfg.eval
    metrics = result.metrics
    cov_frame, cov_pred, cov_info = covariates_only(cfg, meta, bags, spec, fold_of, times)
    add_entry(metrics, task.kind, "covariates_only", y, cov_pred, ev.bootstrap, ev.ci, times, cfg.train.seed)
    comp = comparison(metrics, task.kind)
    comp["covariates_only_folds"] = cov_info
    fused = cfg.model.fusion.kind != "none"
    if fused:
        comp["fused"] = metrics["oof"]
        hcfg = cfg.model_copy(deep=True)
        hcfg.model.fusion.kind = "none"
        hmeta = {k: v for k, v in meta.items() if k not in ("fusion", "side")}
        log.info("comparison: training the histology-only model on the same folds")
        hist = run_cv(hcfg, hmeta, bags, run_dir / "comparison" / "histology_only", (), predefined)
        comp["histology_only"] = hist.metrics["oof"]
        hist_frame = hist.oof
        add_gain(metrics, task.kind, "gain_vs_histology", result.oof, hist_frame, ev.bootstrap, ev.ci, cfg.train.seed)
        add_gain(metrics, task.kind, "gain_vs_covariates", result.oof, cov_frame, ev.bootstrap, ev.ci, cfg.train.seed)
        if ev.importance_repeats:
            comp["importance"] = _importance(cfg, meta, bags, run_dir, spec, fold_of)
    else:  # the run itself is the histology-only model
        comp["histology_only"] = metrics["oof"]
    _write_frame(cov_frame, run_dir / "comparison" / "covariates_only_oof.csv")
    return comp


def _importance(
    cfg: MilConfig, meta: dict[str, Any], bags: Sequence[Bag], run_dir: Path, spec: SideSpec, fold_of: np.ndarray
) -> dict[str, Any]:
    from wsi_ssl.mil.loading import load_mil_model

    ensemble, run_meta = load_mil_model(run_dir)
    per_fold = []
    for model, fold in zip(ensemble.fold_models, run_meta["folds"]):
        test = [bags[int(i)] for i in np.flatnonzero(fold_of == fold["index"])]
        imp = permutation_importance(
            model, meta, test, spec, cfg.eval.importance_repeats, cfg.data.batch_size, cfg.train.seed + fold["index"]
        )
        per_fold.append({"fold": int(fold["index"]), **imp})
    names = [k for k in per_fold[0] if k != "fold"] if per_fold else []
    mean = {n: float(np.nanmean([f[n] for f in per_fold])) for n in names}
    return {
        "score": get_task(meta["task"]).fold_metric_label,
        "mean": dict(sorted(mean.items(), key=lambda kv: -kv[1])),
        "per_fold": per_fold,
    }


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    from wsi_ssl.stores.atomic import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


def comparison_line(metrics: dict[str, Any]) -> str | None:
    """One console line: the headline metric of each model and the gains, or None without a comparison."""
    comp = metrics.get("comparison")
    if not comp:
        return None
    key = comp.get("metric")
    parts = []
    for name in ("covariates_only", "histology_only", "fused", "pooled_linear"):
        v = comp.get(name, {}).get(key)
        if v:
            parts.append(f"{name} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]")
    for name in ("gain_vs_covariates", "gain_vs_histology"):
        g = comp.get(name)
        if g:
            parts.append(f"{name} {g['value']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]")
    return f"comparison ({comp.get('label', key)}, out of fold): " + ", ".join(parts) if parts else None
