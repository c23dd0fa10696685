"""Feature files -> bags -> packed batches.

A bag is what one prediction is made for: a slide, or (``group_by: patient``) all tiles of all a
patient's slides. Batches hold many bags packed back to back with a boolean mask of the padded
layout, so one forward pass serves the whole batch and every aggregator can ignore the padding.
Bags larger than ``max_instances`` are randomly subsampled at training time only; evaluation
always sees every tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wsi_ssl.stores.features import (
    FeatureFileError,
    describe_encoder,
    encoder_identity,
    encoders_differ,
    feature_path,
    read_features,
)


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
    side: np.ndarray | None = None  # [S] raw covariates + omics, NaN where missing (wsi_ssl.mil.clinical)

    def __len__(self) -> int:
        return int(self.features.shape[0])


@dataclass
class Batch:
    """Bags packed back to back (``features`` [sum of lengths, D], stored dtype) plus their mask.

    Packed rather than padded because that is what moves: no padding and no float32 copy cross
    to the device, and the model projects only real instances before padding its (narrower)
    hidden activations. ``x`` gives the padded float32 view for code that wants one.
    """

    features: torch.Tensor  # [T, D] every bag's instances in order, float16/float32 as stored
    lengths: list[int]  # instances per bag (host ints: splitting by them never waits on a GPU)
    mask: torch.Tensor  # [B, N] bool, True for real instances; padding at the end of each row
    target: torch.Tensor  # [B] (long or float) or [B, 2]
    keys: list[str]
    side: torch.Tensor | None = None  # [B, S] raw covariate/omics rows (NaN = missing), float32

    @property
    def x(self) -> torch.Tensor:
        """[B, N, D] float32, zero where padded."""
        parts = self.features.float().split(self.lengths)
        return torch.nn.utils.rnn.pad_sequence(list(parts), batch_first=True)

    def to(self, device: torch.device | str) -> Batch:
        """Move to ``device`` without waiting for the device (see :func:`to_device`)."""
        device = torch.device(device)
        move = lambda t: to_device(t, device)  # noqa: E731
        side = None if self.side is None else move(self.side)
        return Batch(move(self.features), self.lengths, move(self.mask), move(self.target), self.keys, side)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``, without making the host wait for the kernels already queued there.

    A plain ``.to("cuda")`` from pageable host memory synchronizes the stream: the host would
    stop every step until the previous step finished, and could not queue ahead. From pinned
    memory with ``non_blocking`` the copy is queued like a kernel (the caching host allocator
    keeps the pinned source alive until it is done).
    """
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory()  # a no-op for an already pinned tensor
    return t.to(device, non_blocking=True)


def load_bags(
    df: pd.DataFrame,
    features_dir: str | Path,
    targets: np.ndarray,
    group_by: str = "patient",
    encoder: dict[str, str] | None = None,
) -> list[Bag]:
    """Read each slide's features once and group them into bags (in table order).

    ``targets`` is row-aligned with ``df``; slides of one patient share a target (checked by
    the table validation), so the first row's target stands for the bag. Every file must come
    from one encoder (``encoder``, a model's, when given): two encoders of the same width, UNI
    and Phikon-v2 say, would otherwise mix silently.
    """
    df = df.reset_index(drop=True)
    keys = df["patient_id"] if group_by == "patient" else df["slide_id"]
    bags: list[Bag] = []
    dim: int | None = None
    first: tuple[str, dict[str, str]] | None = ("the model", encoder) if encoder else None
    for key, rows in df.groupby(keys, sort=False).groups.items():
        feats, coords, index, slide_ids = [], [], [], []
        for j, row in enumerate(rows):
            sid = str(df.at[row, "slide_id"])
            ff = read_features(feature_path(features_dir, sid))
            if dim is not None and ff.dim != dim:
                raise FeatureFileError(f"{sid}: features have dimension {ff.dim}, other slides have {dim}")
            dim = ff.dim
            ident = encoder_identity(ff.attrs)
            if first is None:
                first = (f"slide {sid}", ident)
            elif encoders_differ(first[1], ident):
                raise FeatureFileError(
                    f"{sid}: embedded by {describe_encoder(ident)}, but {first[0]} by {describe_encoder(first[1])}; "
                    "features of different encoders cannot be mixed (embed every slide with one encoder)"
                )
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


def pack(
    features: Sequence[torch.Tensor],
    targets: Sequence[np.ndarray],
    keys: Sequence[str],
    pin: bool = False,
    sides: Sequence[np.ndarray | None] | torch.Tensor | None = None,
) -> Batch:
    """One packed batch from per-bag feature tensors (all on one device) and their targets."""
    lengths = [int(f.shape[0]) for f in features]
    device = features[0].device
    dtypes = {f.dtype for f in features}
    dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32  # mixed stores: widen
    out = torch.empty(
        sum(lengths), features[0].shape[1], dtype=dtype, device=device, pin_memory=pin and device.type == "cpu"
    )
    torch.cat([f if f.dtype == dtype else f.to(dtype) for f in features], out=out)
    n_max = max(lengths)
    mask = torch.arange(n_max).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    target = torch.from_numpy(np.stack([np.asarray(t) for t in targets]))
    target = target.long() if target.dtype in (torch.int32, torch.int64) else target.float()
    side = None
    if isinstance(sides, torch.Tensor):  # rows already gathered (FeatureBank)
        side = to_device(sides, device)
    elif sides is not None and len(sides) and all(s is not None for s in sides):
        side = to_device(torch.from_numpy(np.stack([np.asarray(s, dtype=np.float32) for s in sides])), device)
    return Batch(
        features=out,
        lengths=lengths,
        mask=to_device(mask, device),
        target=to_device(target, device),
        keys=list(keys),
        side=side,
    )


def collate(
    bags: Sequence[Bag],
    max_instances: int | None = None,
    rng: np.random.Generator | None = None,
) -> Batch:
    """Pack bags into one batch; subsample bags above ``max_instances`` when ``rng`` is given.

    Subsampling needs an ``rng`` on purpose: evaluation calls pass none and so see every tile.
    """
    chosen: list[torch.Tensor] = []
    for bag in bags:
        keep = subsample(len(bag), max_instances, rng)
        chosen.append(torch.from_numpy(np.ascontiguousarray(bag.features if keep is None else bag.features[keep])))
    return pack(chosen, [b.target for b in bags], [b.key for b in bags], sides=[b.side for b in bags])


def subsample(n: int, max_instances: int | None, rng: np.random.Generator | None) -> np.ndarray | None:
    """Sorted rows to keep of a bag of ``n``, or None for all: only with an ``rng`` (training)."""
    if rng is None or max_instances is None or n <= max_instances:
        return None
    return np.sort(rng.choice(n, max_instances, replace=False))


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
        order = (
            np.concatenate(
                [
                    chunk[np.argsort(lens[chunk], kind="stable")]
                    for chunk in np.array_split(order, max(1, -(-len(order) // window)))
                ]
            )
            if len(order)
            else order
        )
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if rng is not None and bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def instance_stats(bags: Sequence[Bag], max_rows: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over (a sample of ``max_rows``) the instances of the given bags.

    Called with training-fold bags only, so no statistic of a validation or test bag leaks in.
    Two passes, a block of rows at a time in float64: a cohort's features are never copied
    whole (a float64 copy of 10 million 1,024-d instances would be 80 GB).
    """
    lengths = np.array([len(b) for b in bags], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    parts: list[np.ndarray] = [b.features for b in bags]
    if offsets[-1] > max_rows:  # the rows a random sample of the concatenated instances holds
        pick = np.sort(np.random.default_rng(seed).choice(int(offsets[-1]), max_rows, replace=False))
        cuts = np.searchsorted(pick, offsets)
        parts = [b.features[pick[cuts[i] : cuts[i + 1]] - offsets[i]] for i, b in enumerate(bags)]
    n = sum(len(p) for p in parts)
    blocks = lambda: (p[i : i + _STATS_BLOCK] for p in parts for i in range(0, len(p), _STATS_BLOCK))  # noqa: E731
    mean = sum(blk.sum(axis=0, dtype=np.float64) for blk in blocks()) / n
    var = sum(np.square(blk.astype(np.float64) - mean).sum(axis=0) for blk in blocks()) / n
    std = np.sqrt(var)
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


_STATS_BLOCK = 16_384  # rows per float64 block: 128 MB at 1,024-d
