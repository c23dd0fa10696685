"""Cross-validation: folds -> fitted fold models -> out-of-fold and test predictions -> metrics.

Each finished fold leaves ``folds/fold_<k>/model.safetensors`` and then ``fold.json`` (written
last), so an interrupted run resumes at the first unfinished fold. The same files let the folds
be trained by the jobs of an array (``mil train --shard I/N``: folds I, I+N, ...) and gathered
by a last run (``--merge``), which trains nothing and writes predictions and metrics. ``model.json``, the
prediction CSVs and ``metrics.json`` are written at the end, each atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.loading import (
    fold_dir,
    load_fold_weights,
    save_fold_weights,
    write_model_json,
)
from wsi_ssl.mil.model import MILModel
from wsi_ssl.mil.splits import make_folds
from wsi_ssl.mil.tasks import get_task
from wsi_ssl.mil.train import fit, pick_device, predict_bags
from wsi_ssl.shard import Shard
from wsi_ssl.stores.atomic import atomic_output

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    metrics: dict[str, Any]
    oof: pd.DataFrame
    test: pd.DataFrame | None
    oof_scores: dict[str, np.ndarray]  # bag key -> instance scores from its out-of-fold model
    trained_folds: list[int] | None = None  # set by a sharded run: the folds it trained, nothing else


class FoldNotTrainedError(ValueError):
    """``--merge`` found folds that no shard has trained (yet) with this config and data."""


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


def _write_json(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float))


write_json = _write_json  # public: metrics.json is rewritten once the comparison is added


def _fit_fingerprint(cfg: MilConfig, meta: dict[str, Any], bags: Sequence[Bag], fold: Any) -> str:
    """What a fold model depends on (config except eval, model shape, its bags): resume only on a match."""
    payload = {
        "cfg": cfg.model_dump(mode="json", exclude={"eval"}),
        "meta": meta,
        "split": [[bags[i].key for i in part] for part in (fold.train, fold.val)],
        "sizes": [len(bags[i]) for i in fold.train],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _is_trained(cfg: MilConfig, meta: dict[str, Any], bags: Sequence[Bag], fold: Any, run_dir: Path) -> bool:
    fdir = fold_dir(run_dir, fold.index)
    if not ((fdir / "fold.json").is_file() and (fdir / "model.safetensors").is_file()):
        return False
    info = json.loads((fdir / "fold.json").read_text())
    return bool(info.get("fingerprint") == _fit_fingerprint(cfg, meta, bags, fold))


def _fit_or_resume(
    cfg: MilConfig, meta: dict[str, Any], bags: Sequence[Bag], fold: Any, run_dir: Path
) -> tuple[MILModel, dict[str, Any]]:
    fdir = fold_dir(run_dir, fold.index)
    info_path = fdir / "fold.json"
    weights = fdir / "model.safetensors"
    sha = _fit_fingerprint(cfg, meta, bags, fold)
    info: dict[str, Any]
    if info_path.is_file() and weights.is_file():
        info = json.loads(info_path.read_text())
        if info.get("fingerprint") == sha:
            try:
                model = load_fold_weights(meta, weights)
            except RuntimeError as exc:  # e.g. an aggregator kind whose model changed since
                log.warning(
                    "fold %d: saved weights do not fit the model (%s); training it again",
                    fold.index,
                    str(exc).splitlines()[0],
                )
            else:
                log.info("fold %d: already trained, loading %s", fold.index, weights)
                return model, info
        else:
            log.warning("fold %d: config, data or split changed since it was trained; training it again", fold.index)
    train = [bags[i] for i in fold.train]
    fit_cfg, fit_meta, searched = cfg, meta, None
    if cfg.train.search is not None:  # nested: chosen on this training fold only (never its test bags)
        from wsi_ssl.mil.search import search_fold, with_params

        searched = search_fold(cfg, meta, bags, np.concatenate([fold.train, fold.val]), fold.index)
        fit_cfg, fit_meta = with_params(cfg, meta, searched["chosen"])
    res = fit(fit_cfg, fit_meta, train, [bags[i] for i in fold.val], seed=cfg.train.seed + fold.index)
    info = {
        "index": fold.index,
        "weights": str(weights.relative_to(run_dir)),
        "n_train": len(fold.train),
        "n_val": len(fold.val),
        "n_test": len(fold.test),
        "best_epoch": res.best_epoch,
        "best_val_loss": res.best_val_loss,
        "seconds": round(res.seconds, 2),
        "train_keys": [bags[i].key for i in fold.train],
        "val_keys": [bags[i].key for i in fold.val],
        "fingerprint": sha,
    }
    if searched is not None:
        info["search"] = searched
    info.update(
        get_task(meta["task"]).fold_info(  # e.g. a Cox model's Breslow baseline
            meta, lambda: predict_bags(res.model, train, cfg.data.batch_size), np.stack([b.target for b in train])
        )
    )
    save_fold_weights(res.model, weights)
    _write_csv(pd.DataFrame(res.history), fdir / "history.csv")
    _write_json(info, info_path)
    log.info(
        "fold %d: %d train / %d val / %d test bags, best epoch %d, %.1fs",
        fold.index,
        len(fold.train),
        len(fold.val),
        len(fold.test),
        res.best_epoch,
        res.seconds,
    )
    return res.model, info


def prediction_frame(
    meta: dict[str, Any],
    bags: Sequence[Bag],
    pred: dict[str, np.ndarray],
    times: np.ndarray | None,
    fold: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per bag: ids, then the task's target and prediction columns (class probabilities /
    value / risk / S(t))."""
    df = pd.DataFrame(
        {
            "key": [b.key for b in bags],
            "patient_id": [b.patient_id for b in bags],
            "slide_ids": [";".join(b.slide_ids) for b in bags],
        }
    )
    if fold is not None:
        df["fold"] = fold
    y = np.stack([np.asarray(b.target) for b in bags]) if bags and bags[0].target.size else None
    get_task(meta["task"]).prediction_columns(df, y, pred, meta.get("classes"), times)
    return df


def run_cv(
    cfg: MilConfig,
    meta: dict[str, Any],
    bags: Sequence[Bag],
    run_dir: str | Path,
    test_bags: Sequence[Bag] = (),
    predefined_folds: np.ndarray | None = None,
    shard: Shard | None = None,
    train_missing: bool = True,
) -> CVResult:
    """K-fold CV over ``bags`` (and ensembled prediction of ``test_bags``); writes the run dir.

    With a ``shard`` of several, only that shard's folds are trained (or found trained) and the
    result holds just ``trained_folds``; ``train_missing=False`` (``--merge``) refuses to train,
    naming every fold not yet trained.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(meta["task"])
    y = np.stack([np.asarray(b.target) for b in bags])
    patients = np.array([b.patient_id for b in bags])
    folds = make_folds(task.kind, y, patients, cfg.eval.folds, cfg.train.val_fraction, cfg.train.seed, predefined_folds)
    if shard is not None and shard.count > 1:  # one job of an array: its folds, gathered by --merge
        mine = [fold for fold in folds if shard.owns(fold.index)]
        for fold in mine:
            _fit_or_resume(cfg, meta, bags, fold, run_dir)
        return CVResult({}, pd.DataFrame(), None, {}, trained_folds=[fold.index for fold in mine])
    if not train_missing:
        missing = [fold.index for fold in folds if not _is_trained(cfg, meta, bags, fold, run_dir)]
        if missing:
            raise FoldNotTrainedError(
                f"--merge: fold(s) {', '.join(map(str, missing))} of {len(folds)} are not trained in {run_dir} with "
                "this config and data; run the missing shards (mil train --shard I/N) first"
            )
    times = task.eval_times(y)
    device = pick_device(cfg.train.device)
    oof: dict[str, np.ndarray] = {}
    fold_of = np.full(len(bags), -1)
    scores: dict[str, np.ndarray] = {}
    fold_infos: list[dict[str, Any]] = []
    per_fold: list[dict[str, Any]] = []  # a fold's metric values, or the reason it has none
    test_preds: list[dict[str, Any]] = []
    for fold in folds:
        model, info = _fit_or_resume(cfg, meta, bags, fold, run_dir)
        fold_infos.append({k: v for k, v in info.items() if not k.endswith("_keys")})
        test = [bags[i] for i in fold.test]
        pred = predict_bags(model, test, cfg.data.batch_size, device, keep_scores=True)
        for key, s in zip([b.key for b in test], pred.pop("scores")):
            if s is not None:
                scores[key] = s
        pred.update(task.fold_outputs(pred, meta, model.bin_edges.numpy(), info, times))
        for k, v in pred.items():
            oof.setdefault(k, np.zeros((len(bags),) + v.shape[1:], dtype=np.float64))[fold.test] = v
        fold_of[fold.test] = fold.index
        try:
            fold_metrics = task.metrics(y[fold.test], pred, n_boot=0, times=times, train_target=y[fold.train])
            per_fold.append({k: v["value"] for k, v in fold_metrics.items()})
        except ValueError as exc:  # e.g. one class only in a tiny fold
            per_fold.append({"error": str(exc)})
        if test_bags:
            tp = predict_bags(model, test_bags, cfg.data.batch_size, device)
            tp.update(task.fold_outputs(tp, meta, model.bin_edges.numpy(), info, times))
            test_preds.append({k: v for k, v in tp.items() if k not in task.fold_only_outputs})
    for k in task.fold_only_outputs:
        oof.pop(k, None)
    metrics: dict[str, Any] = {
        "task": task.kind,
        "n_bags": len(bags),
        "folds": len(folds),
        "oof": task.metrics(y, oof, cfg.eval.bootstrap, cfg.eval.ci, times, cfg.train.seed, train_target=y),
        "per_fold": per_fold,
    }
    if cfg.train.search is not None:  # the values each outer fold's search chose
        from wsi_ssl.mil.search import search_summary

        metrics["search"] = search_summary(cfg, fold_infos)
    oof_df = prediction_frame(meta, bags, oof, times, fold_of)
    test_df = None
    if test_bags:
        ens = {k: np.mean([p[k] for p in test_preds], axis=0) for k in test_preds[0]}
        test_df = prediction_frame(meta, test_bags, ens, times)
        y_test = np.stack([np.asarray(b.target) for b in test_bags])
        metrics["test"] = task.metrics(
            y_test, ens, cfg.eval.bootstrap, cfg.eval.ci, times, cfg.train.seed, train_target=y
        )
        metrics["n_test_bags"] = len(test_bags)
        _write_csv(test_df, run_dir / "test_predictions.csv")
    _write_csv(oof_df, run_dir / "oof_predictions.csv")
    _write_json(metrics, run_dir / "metrics.json")
    write_model_json(run_dir, {**meta, "eval_times": None if times is None else times.tolist(), "folds": fold_infos})
    return CVResult(metrics=metrics, oof=oof_df, test=test_df, oof_scores=scores)
