"""Linear probe on frozen embeddings, with eva's published schedule.

kaiko-ai/eva ``configs/vision/pathology/offline/classification/crc.yaml``: a ``torch.nn.Linear``
head, cross-entropy, AdamW at lr 3e-4, batch 256, at most 12,500 steps, validation after every
epoch, the checkpoint with the best validation ``MulticlassAccuracy`` (macro, i.e. balanced
accuracy) kept, and early stopping after 7 epochs without improvement (``PATIENCE``). eva runs
``n_runs: 5`` seeds; so do we, and every figure is their mean and standard deviation. The
numbers are the config's defaults (``evaluate.linear``) and can be changed there.

One departure, for small sets: validation runs after every epoch but never more often than every
``min_check_steps`` (100) steps, so the patience is never shorter than 700 steps. On NCT-CRC
(100,000 patches, 390 steps an epoch) this is eva's schedule exactly; on a set of a few hundred
patches (one step an epoch) eva's patience of 7 epochs would stop after 7 steps, which is why
eva itself raises it to 400 epochs for BACH (``bach.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LinearSchedule:
    lr: float = 3e-4
    batch_size: int = 256
    max_steps: int = 12_500
    patience: int = 7  # validation checks without a better validation balanced accuracy
    min_check_steps: int = 100  # a check every epoch, but never more often than every this many steps
    weight_decay: float = 0.01  # torch.optim.AdamW's default, which eva leaves as is


@dataclass
class LinearProbe:
    """A trained head and the standardisation it expects (fitted on the training embeddings)."""

    head: nn.Linear
    mean: np.ndarray
    scale: np.ndarray
    best_val: float
    steps: int

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(((x - self.mean) / self.scale).astype(np.float32))
        return torch.softmax(self.head(z), dim=1).numpy()


def _balanced_acc(logits: torch.Tensor, y: torch.Tensor, n_classes: int) -> float:
    pred = logits.argmax(1)
    recalls = [(pred[y == c] == c).float().mean() for c in range(n_classes) if (y == c).any()]
    return float(torch.stack(recalls).mean())


def train_linear(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    seed: int,
    schedule: LinearSchedule = LinearSchedule(),
) -> LinearProbe:
    """Train with early stopping on the validation split; returns the best-validation head.

    Features are standardised with the training split's statistics (a linear head's optimum does
    not change, but one learning rate then fits encoders whose feature scales differ by 100x).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a [256, D] x [D, C] step is too small to share: threads only add sync cost
    try:
        return _train(x_train, y_train, x_val, y_val, n_classes, seed, schedule)
    finally:
        torch.set_num_threads(threads)


def _train(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    seed: int,
    schedule: LinearSchedule,
) -> LinearProbe:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mean = x_train.mean(0)
    scale = x_train.std(0) + 1e-6
    xt = torch.from_numpy(((x_train - mean) / scale).astype(np.float32))
    yt = torch.from_numpy(y_train.astype(np.int64))
    xv = torch.from_numpy(((x_val - mean) / scale).astype(np.float32))
    yv = torch.from_numpy(y_val.astype(np.int64))
    head = nn.Linear(xt.shape[1], n_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    best, best_state, stale, step = -1.0, {k: v.clone() for k, v in head.state_dict().items()}, 0, 0
    since_check = 0
    while step < schedule.max_steps and stale < schedule.patience:
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), schedule.batch_size):
            b = order[i : i + schedule.batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(head(xt[b]), yt[b]).backward()
            opt.step()
            step += 1
            since_check += 1
            if step >= schedule.max_steps:
                break
        if since_check < schedule.min_check_steps and step < schedule.max_steps:
            continue
        since_check = 0
        with torch.no_grad():
            val = _balanced_acc(head(xv), yv, n_classes)
        if val > best:
            best, stale = val, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            stale += 1
    head.load_state_dict(best_state)
    return LinearProbe(head.eval(), mean, scale, best, step)
