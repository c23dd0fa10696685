"""Tiles of many stores as a stream of in-order batches, decoded in DataLoader workers.

Each item is one batch of consecutive tiles of one slide (a batch never spans two slides, so a
slide's feature file can be closed the moment its last batch is done). Reading a contiguous
range touches each zarr shard once, and the JPEG decoding runs in worker processes while the
main process runs the encoder. A DataLoader with workers returns items in index order, so the
features of tile i land in row i.

Workers open stores lazily by path and keep only the last few open. A store that fails to read
does not kill the loader: the item carries the error, and the runner drops that slide only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from wsi_ssl.embed.plan import SlideJob
from wsi_ssl.embed.preprocess import Preprocess
from wsi_ssl.stores.tile_store import TileStore

_OPEN_STORES = 4  # per worker; slides are read in order, so a tiny cache suffices


@dataclass(frozen=True)
class BatchRef:
    job: int  # index into the job list
    start: int
    stop: int


def batch_refs(jobs: list[SlideJob], batch_size: int) -> list[BatchRef]:
    """All batches of all slides, slide by slide, tiles in store order."""
    refs: list[BatchRef] = []
    for j, job in enumerate(jobs):
        for start in range(0, job.n_tiles, batch_size):
            refs.append(BatchRef(j, start, min(start + batch_size, job.n_tiles)))
    return refs


class TileBatches(Dataset):
    """Map-style dataset of ``BatchRef``s; item = dict(job, start, tiles, error).

    ``tiles`` is the preprocessed float batch [B, 3, S, S] when ``preprocess`` is given (CPU
    runs: the work stays off the forward's cores), else the raw uint8 batch [B, T, T, 3] (GPU
    runs: preprocessed on the device after a 4x smaller copy).
    """

    def __init__(self, jobs: list[SlideJob], batch_size: int, preprocess: Preprocess | None) -> None:
        self.jobs = jobs
        self.refs = batch_refs(jobs, batch_size)
        self.preprocess = preprocess
        self._stores: OrderedDict[int, TileStore] = OrderedDict()

    def __len__(self) -> int:
        return len(self.refs)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stores"] = OrderedDict()  # workers reopen stores themselves
        return state

    def _store(self, j: int) -> TileStore:
        store = self._stores.get(j)
        if store is None:
            store = TileStore(self.jobs[j].store)
            self._stores[j] = store
            while len(self._stores) > _OPEN_STORES:
                self._stores.popitem(last=False)
        return store

    def __getitem__(self, index: int) -> dict[str, Any]:
        ref = self.refs[index]
        try:
            tiles = torch.from_numpy(self._store(ref.job).tiles(ref.start, ref.stop))
            if tiles.shape[0] != ref.stop - ref.start:
                raise ValueError(f"read {tiles.shape[0]} tiles, expected {ref.stop - ref.start}")
            if self.preprocess is not None:
                tiles = self.preprocess(tiles)
            error = ""
        except Exception as exc:  # reported per slide by the runner; the loader goes on
            tiles = torch.empty(0, dtype=torch.uint8)
            error = f"{self.jobs[ref.job].store}: reading tiles {ref.start}:{ref.stop} failed: {type(exc).__name__}: {exc}"
        return {"job": ref.job, "start": ref.start, "tiles": tiles, "error": error}


def make_loader(dataset: TileBatches, workers: int, prefetch_factor: int, pin_memory: bool) -> DataLoader:
    """In-order loader of whole batches (``batch_size=None``: the dataset already batches)."""
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=pin_memory, **kwargs)
