"""``train.search``: nested hyperparameter search, chosen on each outer training fold only.

Fixed settings tuned on one dataset (the MUSK recipe, say) can land well below a simple
baseline on another. The search picks learning rate, weight decay, dropout and epochs per outer
fold, without touching that fold's test bags:

1. the outer training fold (its training and early-stopping bags; never its test bags) is split
   by patient into ``train.search.folds`` inner folds, stratified as the outer folds are;
2. every combination of the listed values is trained on each inner training part and scored on
   the held-out inner part: the task's loss (``criterion: loss``, lower wins) or its headline
   metric (``criterion: metric``: AUROC, R2, C-index; higher wins), averaged over inner folds;
3. the best combination (the first listed, on a tie) is refitted on the outer training fold, with
   the run's usual early stopping (``train.val_fraction``; the chosen epochs are then the
   maximum), and recorded in the fold's ``fold.json`` and in ``metrics.json`` (``search``).

Inner fits train for a fixed number of epochs (no early stopping), so one fit of the longest
listed epoch count is scored after each listed epoch count: the first ``e`` epochs of a longer
run are exactly a run of ``e`` epochs (same seed, same batches, no schedule), and epochs cost
nothing extra to search. Each inner fold uses one seed for every combination (common random
numbers), so combinations differ only in their settings.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.feature_bank import FeatureBank
from wsi_ssl.mil.model import MILModel
from wsi_ssl.mil.splits import SplitError, _group_kfold
from wsi_ssl.mil.tasks import get_task
from wsi_ssl.mil.train import fit, forward_all, pick_device

log = logging.getLogger(__name__)

PARAMS = ("lr", "weight_decay", "dropout", "epochs")


def current(cfg: MilConfig) -> dict[str, Any]:
    """The fixed settings the grid starts from (what an unlisted parameter keeps)."""
    return {
        "lr": cfg.train.lr,
        "weight_decay": cfg.train.weight_decay,
        "dropout": cfg.aggregator.dropout,
        "epochs": cfg.train.epochs,
    }


def candidates(cfg: MilConfig) -> list[dict[str, Any]]:
    """Every combination of ``train.search``'s values, in the order listed (lr varies slowest)."""
    sc = cfg.train.search
    if sc is None:
        return [current(cfg)]
    base = current(cfg)
    lists = [list(getattr(sc, p)) or [base[p]] for p in PARAMS]
    return [dict(zip(PARAMS, combo)) for combo in itertools.product(*lists)]


def with_params(cfg: MilConfig, meta: dict[str, Any], params: dict[str, Any]) -> tuple[MilConfig, dict[str, Any]]:
    """``cfg`` and model ``meta`` with ``params`` applied (dropout lives in the aggregator)."""
    train = cfg.train.model_copy(
        update={
            "lr": float(params["lr"]),
            "weight_decay": float(params["weight_decay"]),
            "epochs": int(params["epochs"]),
        }
    )
    agg = cfg.aggregator.model_copy(update={"dropout": float(params["dropout"])})
    new_meta = copy.deepcopy(meta)
    new_meta["aggregator"]["dropout"] = float(params["dropout"])
    return cfg.model_copy(update={"train": train, "aggregator": agg}), new_meta


def _targets(bags: Sequence[Bag]) -> np.ndarray:
    return np.stack([np.asarray(b.target) for b in bags])


class _Scorer:
    """Scores a model in training on held-out inner-fold bags: the task's loss or headline metric."""

    def __init__(self, cfg: MilConfig, meta: dict[str, Any], fit_bags: Sequence[Bag], held: Sequence[Bag]) -> None:
        self.cfg, self.meta = cfg, meta
        self.task = get_task(meta["task"])
        self.y_fit = _targets(fit_bags)
        self.y_held = _targets(held)
        self.device = pick_device(cfg.train.device)
        self.bank = FeatureBank(held, self.device, cfg.data.features_on_device)
        self.class_weights = self.task.class_weights(cfg.task, meta, self.y_fit)  # as the fit weighs its loss

    @torch.no_grad()
    def __call__(self, model: MILModel) -> float:
        cfg = self.cfg
        out = forward_all(model, self.bank, cfg.data.batch_size, cfg.train.bag_forward, cfg.train.per_bag_min_instances)
        if cfg.train.search is not None and cfg.train.search.criterion == "metric":
            named = self.task.predictions(
                out, self.meta.get("survival_loss"), float(model.target_mean), float(model.target_std)
            )
            pred = {k: v.float().cpu().numpy() for k, v in named.items()}
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")  # undefined-metric chatter on tiny inner folds
                    values = self.task.metrics(self.y_held, pred, n_boot=0, train_target=self.y_fit)
            except ValueError:  # e.g. one class only in a tiny inner fold
                return float("nan")
            return float(values[self.task.headline[0]]["value"])
        loss_fn = self.task.loss(
            self.meta.get("survival_loss") or "cox",
            cfg.task.ties,
            cfg.task.cox_weighting,
            self.class_weights,
            model.bin_edges,
        )
        y = torch.from_numpy(self.y_held)
        y = (y.long() if y.dtype in (torch.int32, torch.int64) else y.float()).to(out.device)
        return float(loss_fn(out, self.task.loss_target(y, model.target_mean, model.target_std)))


def search_fold(
    cfg: MilConfig, meta: dict[str, Any], bags: Sequence[Bag], train_idx: np.ndarray, fold_index: int
) -> dict[str, Any]:
    """Choose ``train.search``'s combination on the bags ``train_idx`` (an outer training fold).

    Returns the record written to ``fold.json``: ``chosen``, the criterion, and every
    candidate's mean and per-inner-fold scores. Only ``bags[i]`` for ``i`` in ``train_idx`` are
    ever trained on or scored.
    """
    sc = cfg.train.search
    if sc is None:
        raise ValueError("search_fold needs train.search")
    started = time.perf_counter()
    task = get_task(meta["task"])
    sub = [bags[i] for i in np.asarray(train_idx)]
    y = _targets(sub)
    patients = np.array([b.patient_id for b in sub]).astype(str)
    try:
        inner = _group_kfold(task.strata(y), patients, sc.folds, cfg.train.seed + 7919 + fold_index)
    except SplitError as exc:
        raise SplitError(f"train.search.folds={sc.folds} in outer fold {fold_index}: {exc}") from None
    grid = candidates(cfg)
    lower_wins = sc.criterion == "loss"
    scores: dict[int, list[float]] = {i: [] for i in range(len(grid))}
    # Combinations that differ only in epochs share one fit of the longest of them.
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(grid):
        groups.setdefault((c["lr"], c["weight_decay"], c["dropout"]), []).append(i)
    for j, (inner_train, inner_held) in enumerate(inner):
        fit_bags, held = [sub[i] for i in inner_train], [sub[i] for i in inner_held]
        for members in groups.values():
            longest = max(grid[i]["epochs"] for i in members)
            c_cfg, c_meta = with_params(cfg, meta, {**grid[members[0]], "epochs": longest})
            scorer = _Scorer(c_cfg, c_meta, fit_bags, held)
            at_epoch: dict[int, float] = {}
            wanted = {grid[i]["epochs"] for i in members}

            def on_epoch(
                epoch: int,
                model: MILModel,
                wanted: set[int] = wanted,
                at: dict[int, float] = at_epoch,
                s: _Scorer = scorer,
            ) -> None:
                if epoch in wanted:
                    at[epoch] = s(model)

            fit(c_cfg, c_meta, fit_bags, [], seed=cfg.train.seed + 1009 * (fold_index + 1) + j, on_epoch=on_epoch)
            for i in members:
                scores[i].append(at_epoch.get(grid[i]["epochs"], float("nan")))
    means = [float(np.nanmean(s)) if np.isfinite(s).any() else float("nan") for s in scores.values()]
    ranked = [m if np.isfinite(m) else (np.inf if lower_wins else -np.inf) for m in means]
    best = int(np.argmin(ranked) if lower_wins else np.argmax(ranked))  # first of equals: the order listed
    chosen = grid[best]
    log.info(
        "fold %d: search chose %s (%s %.4f) of %d combinations",
        fold_index,
        chosen,
        sc.criterion,
        means[best],
        len(grid),
    )
    return {
        "chosen": chosen,
        "criterion": sc.criterion if sc.criterion == "loss" else f"metric:{task.headline[0]}",
        "inner_folds": sc.folds,
        "n_bags": len(sub),
        "candidates": [{**c, "score": means[i], "fold_scores": scores[i]} for i, c in enumerate(grid)],
        "seconds": round(time.perf_counter() - started, 2),
    }


def search_summary(cfg: MilConfig, fold_infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``metrics.json``'s ``search``: the grid, the criterion and the values chosen per outer fold."""
    sc = cfg.train.search
    if sc is None:
        raise ValueError("search_summary needs train.search")
    base = current(cfg)
    return {
        "grid": {p: list(getattr(sc, p)) or [base[p]] for p in PARAMS},
        "criterion": sc.criterion,
        "inner_folds": sc.folds,
        "chosen": [{"fold": fi.get("index"), **fi.get("search", {}).get("chosen", {})} for fi in fold_infos],
    }
