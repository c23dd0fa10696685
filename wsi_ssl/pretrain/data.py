"""Tiles of many tile stores as one shuffled dataset, sharded per rank.

Stores are only read through :mod:`wsi_ssl.stores.tile_store`. The dataset keeps paths, not open
stores, and each DataLoader worker opens the stores it touches lazily, so forking workers is cheap
and no zarr handle crosses a process boundary. Shuffling is global (across slides), and under
DDP each rank draws a disjoint, equal-sized slice of every epoch's permutation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from wsi_ssl.stores.tile_store import TileStore, TileStoreError, find_tile_stores


def resolve_stores(inputs: Sequence[str | Path]) -> list[Path]:
    """Tile-store paths from folders of stores or single ``.zarr`` stores (sorted, de-duplicated)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.suffix == ".zarr" and p.is_dir():
            out.append(p)
        elif p.is_dir():
            found = find_tile_stores(p)
            if not found:
                raise TileStoreError(f"no tile stores (*.zarr) in {p}")
            out.extend(found)
        else:
            raise TileStoreError(f"--tiles {p}: not a folder of tile stores or a .zarr store")
    return sorted(set(out))


@dataclass
class TileIndex:
    """Every usable tile as (store number, tile number), plus what the stores agree on."""

    paths: list[Path]
    store_idx: np.ndarray  # [N] int32
    tile_idx: np.ndarray  # [N] int64
    tile_size: int
    mpp: float | None

    @classmethod
    def build(cls, paths: Sequence[Path], min_tissue: float = 0.0) -> TileIndex:
        store_parts, tile_parts = [], []
        sizes: dict[int, Path] = {}
        mpps: set[float] = set()
        for i, path in enumerate(paths):
            store = TileStore(path)  # raises with the path when incomplete or malformed
            sizes.setdefault(store.tile_size, path)
            mpps.add(round(store.mpp, 4))
            idx = np.arange(len(store), dtype=np.int64)
            if min_tissue > 0:
                idx = idx[store.tissue >= min_tissue]
            store_parts.append(np.full(len(idx), i, dtype=np.int32))
            tile_parts.append(idx)
        if len(sizes) > 1:
            raise TileStoreError(f"tile stores have different tile sizes: {sorted(sizes.items())}; tile them alike")
        if not paths:
            raise TileStoreError("no tile stores given")
        store_idx = np.concatenate(store_parts)
        if len(store_idx) == 0:
            raise TileStoreError(f"the {len(paths)} tile store(s) hold no tiles (after min_tissue={min_tissue})")
        mpp = next(iter(mpps)) if len(mpps) == 1 else None
        return cls(list(paths), store_idx, np.concatenate(tile_parts), next(iter(sizes)), mpp)

    def __len__(self) -> int:
        return len(self.store_idx)

    def split_holdout(self, n_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, holdout) positions; the holdout is a fixed random sample kept out of training."""
        n = len(self)
        n_holdout = min(n_holdout, n // 2)
        perm = np.random.default_rng(seed).permutation(n)
        return np.sort(perm[n_holdout:]), np.sort(perm[:n_holdout])


class TileDataset(Dataset):
    """uint8 [3, T, T] tensors of the tiles at ``positions`` of a :class:`TileIndex`."""

    def __init__(self, index: TileIndex, positions: np.ndarray) -> None:
        self.paths = [str(p) for p in index.paths]
        self.store_idx = index.store_idx[positions]
        self.tile_idx = index.tile_idx[positions]
        self._open: dict[int, TileStore] = {}

    def __len__(self) -> int:
        return len(self.store_idx)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_open"] = {}  # each worker opens its own handles
        return state

    def _store(self, i: int) -> TileStore:
        store = self._open.get(i)
        if store is None:
            store = self._open[i] = TileStore(self.paths[i])
        return store

    def __getitem__(self, item: int) -> torch.Tensor:
        tile = self._store(int(self.store_idx[item])).tile(int(self.tile_idx[item]))
        return torch.from_numpy(np.ascontiguousarray(tile)).permute(2, 0, 1)

    def load_all(self) -> torch.Tensor:
        """Every tile as one uint8 batch [N, 3, T, T] (for the small held-out monitoring sets)."""
        if len(self) == 0:
            raise TileStoreError("empty tile set")
        out = []
        for s in np.unique(self.store_idx):
            sel = np.nonzero(self.store_idx == s)[0]
            tiles = self._store(int(s)).take(self.tile_idx[sel])
            out.append((sel, tiles))
        batch = np.empty((len(self),) + out[0][1].shape[1:], dtype=np.uint8)
        for sel, tiles in out:
            batch[sel] = tiles
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


class ShardedEpochSampler(Sampler[int]):
    """Each epoch: one seeded permutation of all items, rank ``r`` of ``w`` takes items r, r+w, ...

    Every rank gets the same count (the permutation is padded by wrapping), so DDP ranks step in
    lock-step, and the shards of one epoch are disjoint apart from the at most w-1 padding items.
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, {world_size})")
        self.n, self.rank, self.world_size, self.seed, self.shuffle = n, rank, world_size, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world_size)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = len(self) * self.world_size
        if total > self.n:
            order = np.concatenate([order, order[: total - self.n]])
        return iter(order[self.rank : total : self.world_size].tolist())


class PretrainDataModule(L.LightningDataModule):
    """The per-rank training DataLoader, built once Lightning knows the rank and world size."""

    def __init__(self, dataset: TileDataset, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.num_workers, self.seed = dataset, batch_size, num_workers, seed
        if len(dataset) < batch_size:
            raise TileStoreError(
                f"only {len(dataset)} training tiles for data.batch_size={batch_size}; lower the batch size"
            )

    def loader(self, rank: int, world_size: int) -> torch.utils.data.DataLoader:
        sampler = ShardedEpochSampler(len(self.dataset), rank, world_size, self.seed)
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=True,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            prefetch_factor=4 if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return self.loader(rank, world)
