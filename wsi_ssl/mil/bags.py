"""Feature files -> bags -> padded batches.

A bag is what one prediction is made for: a slide, or (``group_by: patient``) all tiles of all a
patient's slides. Batches hold many bags padded to the longest with a boolean mask, so one
forward pass serves the whole batch and every aggregator can ignore the padding. Bags larger than
``max_instances`` are randomly subsampled at training time only; evaluation always sees every tile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from wsi_ssl.stores.features import FeatureFileError, feature_path, read_features


@dataclass
class Bag:
    """The instances of one bag and its target (class index, value, or [time, event])."""

    key: str  # patient_id or slide_id: the unit of prediction
    patient_id: str
    features: np.ndarray  # [N, D], float32 or float16 as stored
    target: np.ndarray  # shape () for class/value, (2,) for survival
    slide_ids: list[str] = field(default_factory=list)
    coords: np.ndarray | None = None  # [N, 2] level-0 pixels
    slide_index: np.ndarray | None = None  # [N] which of slide_ids each instance came from

    def __len__(self) -> int:
        return int(self.features.shape[0])


@dataclass
class Batch:
    x: torch.Tensor  # [B, N, D] float32, zero where padded
    mask: torch.Tensor  # [B, N] bool, True for real instances
    target: torch.Tensor  # [B] (long or float) or [B, 2]
    keys: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.x.to(device), self.mask.to(device), self.target.to(device), self.keys)


def load_bags(df: pd.DataFrame, features_dir: str | Path, targets: np.ndarray, group_by: str = "patient") -> list[Bag]:
    """Read each slide's features once and group them into bags (in table order).

    ``targets`` is row-aligned with ``df``; slides of one patient share a target (checked by
    the table validation), so the first row's target stands for the bag.
    """
    df = df.reset_index(drop=True)
    keys = df["patient_id"] if group_by == "patient" else df["slide_id"]
    bags: list[Bag] = []
    dim: int | None = None
    for key, rows in df.groupby(keys, sort=False).groups.items():
        feats, coords, index, slide_ids = [], [], [], []
        for j, row in enumerate(rows):
            sid = str(df.at[row, "slide_id"])
            ff = read_features(feature_path(features_dir, sid))
            if dim is not None and ff.dim != dim:
                raise FeatureFileError(f"{sid}: features have dimension {ff.dim}, other slides have {dim}")
            dim = ff.dim
            feats.append(ff.features)
            coords.append(ff.coords)
            index.append(np.full(len(ff), j, dtype=np.int32))
            slide_ids.append(sid)
        if sum(len(f) for f in feats) == 0:
            raise FeatureFileError(f"bag {key!r}: its feature file(s) {slide_ids} hold no tiles")
        bags.append(
            Bag(
                key=str(key),
                patient_id=str(df.at[rows[0], "patient_id"]),
                features=np.concatenate(feats) if len(feats) > 1 else feats[0],
                target=np.asarray(targets[rows[0]]),
                slide_ids=slide_ids,
                coords=np.concatenate(coords),
                slide_index=np.concatenate(index),
            )
        )
    return bags


def collate(
    bags: Sequence[Bag],
    max_instances: int | None = None,
    rng: np.random.Generator | None = None,
) -> Batch:
    """Pad bags into one batch; subsample bags above ``max_instances`` when ``rng`` is given.

    Subsampling needs an ``rng`` on purpose: evaluation calls pass none and so see every tile.
    """
    chosen: list[np.ndarray] = []
    for bag in bags:
        feats = bag.features
        if rng is not None and max_instances is not None and len(feats) > max_instances:
            feats = feats[np.sort(rng.choice(len(feats), max_instances, replace=False))]
        chosen.append(feats)
    n_max = max(len(f) for f in chosen)
    dim = chosen[0].shape[1]
    x = torch.zeros(len(bags), n_max, dim, dtype=torch.float32)
    mask = torch.zeros(len(bags), n_max, dtype=torch.bool)
    for i, feats in enumerate(chosen):
        x[i, : len(feats)] = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
        mask[i, : len(feats)] = True
    target = torch.from_numpy(np.stack([np.asarray(b.target) for b in bags]))
    target = target.long() if target.dtype in (torch.int32, torch.int64) else target.float()
    return Batch(x=x, mask=mask, target=target, keys=[b.key for b in bags])


def batch_indices(
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator | None = None,
    bucket: bool = True,
) -> list[list[int]]:
    """Split bag indices into batches: shuffled when ``rng`` is given, in order otherwise.

    With ``bucket``, shuffled bags are sorted by length within windows of 8 batches before being
    cut, so a batch rarely pads a 500-tile bag to 5,000; the batch order is shuffled again after.
    """
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    if bucket:
        window = batch_size * 8
        lens = np.asarray(lengths)
        order = np.concatenate(
            [chunk[np.argsort(lens[chunk], kind="stable")] for chunk in np.array_split(order, max(1, -(-len(order) // window)))]
        ) if len(order) else order
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if rng is not None and bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def iter_batches(
    bags: Sequence[Bag],
    batch_size: int,
    rng: np.random.Generator | None = None,
    max_instances: int | None = None,
    bucket: bool = True,
) -> Iterator[tuple[list[int], Batch]]:
    """Yield (bag indices, batch); training passes an ``rng`` (shuffle + subsample), evaluation none."""
    for idx in batch_indices([len(b) for b in bags], batch_size, rng, bucket):
        yield idx, collate([bags[i] for i in idx], max_instances, rng)


def instance_stats(bags: Sequence[Bag], max_rows: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over (a sample of) the instances of the given bags.

    Called with training-fold bags only, so no statistic of a validation or test bag leaks in.
    """
    feats = np.concatenate([b.features for b in bags]).astype(np.float64)
    if len(feats) > max_rows:
        feats = feats[np.random.default_rng(seed).choice(len(feats), max_rows, replace=False)]
    std = feats.std(axis=0)
    return feats.mean(axis=0).astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
