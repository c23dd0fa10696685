"""Fitting one fold: training-fold statistics, the epoch loop, early stopping, prediction.

Everything fitted from data (feature mean/std, regression target mean/std, discrete-time bins,
class weights) is computed from the training fold's bags only and stored in the model's buffers,
so the validation and test bags influence nothing but early stopping and the reported metrics.
"""

from __future__ import annotations

import copy
import logging
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wsi_ssl.mil.bags import Bag, Batch, batch_indices, collate
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.feature_bank import FeatureBank
from wsi_ssl.mil.model import MILModel, build_model

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    model: MILModel
    best_epoch: int
    best_val_loss: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _targets(bags: Sequence[Bag]) -> np.ndarray:
    return np.stack([np.asarray(b.target) for b in bags])


def prepare_model(
    cfg: MilConfig, meta: dict[str, Any], train_bags: Sequence[Bag]
) -> tuple[MILModel, torch.Tensor | None]:
    """A fresh model whose buffers hold the training fold's statistics, and class weights."""
    from wsi_ssl.mil.bags import instance_stats

    model = build_model(meta)
    y = _targets(train_bags)
    if cfg.data.normalize_features:
        mean, std = instance_stats(train_bags, seed=cfg.train.seed)
        model.feat_mean.copy_(torch.from_numpy(mean))
        model.feat_std.copy_(torch.from_numpy(std))
    for name, value in model.task.fitted_buffers(cfg.task, meta, y).items():  # target stats, time bins
        model.get_buffer(name).copy_(value)
    if model.side_encoder is not None:  # covariate/omics statistics: training fold only
        model.side_encoder.fit(np.stack([b.side for b in train_bags if b.side is not None]))
    return model, model.task.class_weights(cfg.task, meta, y)


def _loss_target(model: MILModel, y: torch.Tensor) -> torch.Tensor:
    return model.task.loss_target(y, model.target_mean, model.target_std)


def run_batch(model: MILModel, batch: Batch, mode: str = "batched", min_instances: int = 256) -> torch.Tensor:
    """The model's outputs for a packed batch, batched or bag by bag (``TrainConfig.bag_forward``)."""
    lengths = batch.lengths
    per_bag = mode == "per_bag" or (
        mode == "auto" and batch.features.device.type == "cpu" and sum(lengths) / max(len(lengths), 1) >= min_instances
    )
    if per_bag:
        return model.forward_per_bag(batch.features, lengths, batch.side)
    return model.forward_packed(batch.features, lengths, batch.mask, batch.side)


@torch.no_grad()
def forward_all(
    model: MILModel, bank: FeatureBank, batch_size: int, mode: str = "batched", min_instances: int = 256
) -> torch.Tensor:
    """Raw head outputs (on the model's device) for every bag of ``bank``, in order, with every instance."""
    model.eval()
    outs: list[torch.Tensor] = [torch.empty(0)] * len(bank)
    for idx in batch_indices(bank.lengths, batch_size, rng=None, bucket=True):
        out = run_batch(model, bank.batch(idx), mode, min_instances)
        for j, i in enumerate(idx):
            outs[i] = out[j]
    return torch.stack(outs)


def fit(
    cfg: MilConfig,
    meta: dict[str, Any],
    train_bags: Sequence[Bag],
    val_bags: Sequence[Bag],
    seed: int,
    on_epoch: Callable[[int, MILModel], None] | None = None,
) -> FitResult:
    """Train on ``train_bags``; keep the weights of the epoch with the lowest validation loss.

    ``on_epoch(epoch, model)`` runs after each epoch (the nested search scores the model there:
    one run of the longest epoch count serves every shorter one, as the trajectory is the same).
    """
    started = _time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = pick_device(cfg.train.device)
    model, class_weights = prepare_model(cfg, meta, train_bags)
    model.to(device)
    if class_weights is not None:
        class_weights = class_weights.to(device)  # once: the loss would copy it every step
    loss_fn = model.task.loss(
        meta.get("survival_loss") or "cox", cfg.task.ties, cfg.task.cox_weighting, class_weights, model.bin_edges
    )
    # fused: one kernel for the whole update on a GPU, where a MIL step is mostly launch overhead
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, fused=device.type == "cuda"
    )
    y_val = torch.from_numpy(_targets(val_bags)) if val_bags else None
    train_bank = FeatureBank(train_bags, device, cfg.data.features_on_device)
    val_bank = FeatureBank(val_bags, device, cfg.data.features_on_device) if val_bags else None
    log.debug("training features on %s (%.1f MB)", train_bank.device, train_bank.nbytes / 1e6)
    best_state, best_epoch, best_val = copy.deepcopy(model.state_dict()), 0, float("inf")
    history: list[dict[str, float]] = []
    for epoch in range(1, cfg.train.epochs + 1):
        model.train()
        # The epoch's loss is summed on the device: reading it back each step would make the
        # host wait for every step's kernels before it could queue the next batch.
        total, n = torch.zeros((), device=device), 0
        for idx in batch_indices(train_bank.lengths, cfg.data.batch_size, rng, cfg.data.bucket_by_length):
            b = train_bank.batch(idx, cfg.data.max_instances_train, rng)
            out = run_batch(model, b, cfg.train.bag_forward, cfg.train.per_bag_min_instances)
            loss = loss_fn(out, _loss_target(model, b.target))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(b.keys)
            n += len(b.keys)
        row = {"epoch": float(epoch), "train_loss": float(total) / max(n, 1)}
        if y_val is not None and val_bank is not None:
            out = forward_all(
                model, val_bank, cfg.data.batch_size, cfg.train.bag_forward, cfg.train.per_bag_min_instances
            )
            y = y_val.long() if y_val.dtype in (torch.int32, torch.int64) else y_val.float()
            row["val_loss"] = float(loss_fn(out.to(device), _loss_target(model, y.to(device))))
            if row["val_loss"] < best_val - 1e-6:
                best_val, best_epoch, best_state = row["val_loss"], epoch, copy.deepcopy(model.state_dict())
            elif epoch - best_epoch >= cfg.train.patience:
                history.append(row)
                break
        history.append(row)
        log.debug("epoch %d %s", epoch, row)
        if on_epoch is not None:
            on_epoch(epoch, model)
    if y_val is None:
        best_state, best_epoch = model.state_dict(), int(history[-1]["epoch"])
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model=model.cpu(),
        best_epoch=best_epoch,
        best_val_loss=None if y_val is None else best_val,
        history=history,
        seconds=_time.perf_counter() - started,
    )


@torch.no_grad()
def predict_bags(
    model: MILModel, bags: Sequence[Bag], batch_size: int, device: torch.device | str = "cpu", keep_scores: bool = False
) -> dict[str, Any]:
    """Named predictions (prob / value / risk / survival) per bag; attention scores on request."""
    model.eval().to(device)
    per_bag: list[dict[str, np.ndarray]] = [{} for _ in bags]
    for idx in batch_indices([len(b) for b in bags], batch_size, rng=None, bucket=True):
        b = collate([bags[i] for i in idx]).to(device)
        pred = model.predict_packed(b.features, b.lengths, b.mask, b.side)
        if not keep_scores:
            pred.pop("scores", None)
        host = {k: v.float().cpu().numpy() for k, v in pred.items()}  # one copy per batch and output
        for j, i in enumerate(idx):
            for k, v in host.items():
                per_bag[i][k] = v[j, : len(bags[i])] if k == "scores" else v[j]
    model.cpu()
    keys = [k for k in per_bag[0] if k != "scores"] if per_bag else []
    result: dict[str, Any] = {k: np.stack([p[k] for p in per_bag]) for k in keys}
    if keep_scores:
        result["scores"] = [p.get("scores") for p in per_bag]
    return result
