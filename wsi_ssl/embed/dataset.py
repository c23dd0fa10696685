"""Tiles of many stores as a stream of in-order batches, decoded in DataLoader workers.

Batches are packed across slides: tiles are taken in (slide, tile) order and cut every
``batch_size`` tiles, so a cohort of small biopsies still runs the encoder on full batches. Each
batch is a list of segments (slide, first tile, count); reading a contiguous range touches each
zarr shard once, and the JPEG decoding runs in worker processes while the main process runs the
encoder. A DataLoader returns items in index order, so the features of tile i land in row i.

Workers open stores lazily by path and keep only the last few open. A store that fails to read
does not kill the loader: its segment is left out of the batch and reported in ``errors``, and
the runner drops that slide only.
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
class Segment:
    job: int  # index into the job list
    start: int
    stop: int


def pack_batches(jobs: list[SlideJob], batch_size: int) -> list[list[Segment]]:
    """All tiles of all slides in order, cut into batches of ``batch_size`` (the last may be short).

    A batch also ends where the tile size changes, so its tiles always stack into one tensor.
    """
    batches: list[list[Segment]] = []
    current: list[Segment] = []
    room = batch_size
    for j, job in enumerate(jobs):
        if current and job.n_tiles and jobs[current[-1].job].tile_size != job.tile_size:
            batches.append(current)
            current, room = [], batch_size
        start = 0
        while start < job.n_tiles:
            take = min(room, job.n_tiles - start)
            current.append(Segment(j, start, start + take))
            start += take
            room -= take
            if room == 0:
                batches.append(current)
                current, room = [], batch_size
    if current:
        batches.append(current)
    return batches


class TileBatches(Dataset):
    """Map-style dataset of packed batches; item = dict(segments, tiles, errors).

    ``segments`` lists ``[job, start, count]`` of the rows of ``tiles`` in order; ``errors`` lists
    ``[job, message]`` for segments that could not be read (their rows are absent).

    ``tiles`` is the preprocessed float batch [B, 3, S, S] when ``preprocess`` is given (CPU
    runs: the work stays off the forward's cores), else the raw uint8 batch [B, T, T, 3] (GPU
    runs: preprocessed on the device after a 4x smaller copy).
    """

    def __init__(self, jobs: list[SlideJob], batch_size: int, preprocess: Preprocess | None) -> None:
        self.jobs = jobs
        self.batches = pack_batches(jobs, batch_size)
        self.preprocess = preprocess
        self._stores: OrderedDict[int, TileStore] = OrderedDict()

    def __len__(self) -> int:
        return len(self.batches)

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
        parts: list[torch.Tensor] = []
        segments: list[list[int]] = []
        errors: list[list[Any]] = []
        for seg in self.batches[index]:
            try:
                tiles = self._store(seg.job).tiles(seg.start, seg.stop)
                if tiles.shape[0] != seg.stop - seg.start:
                    raise ValueError(f"read {tiles.shape[0]} tiles, expected {seg.stop - seg.start}")
                parts.append(torch.from_numpy(tiles))
                segments.append([seg.job, seg.start, seg.stop - seg.start])
            except Exception as exc:  # reported per slide by the runner; the loader goes on
                errors.append(
                    [
                        seg.job,
                        f"{self.jobs[seg.job].store}: reading tiles {seg.start}:{seg.stop} failed: "
                        f"{type(exc).__name__}: {exc}",
                    ]
                )
        batch = torch.cat(parts) if len(parts) > 1 else parts[0] if parts else torch.empty(0, dtype=torch.uint8)
        if parts and self.preprocess is not None:
            batch = self.preprocess(batch)
        return {"segments": segments, "tiles": batch, "errors": errors}


def make_loader(
    dataset: TileBatches, workers: int, prefetch_factor: int, pin_memory: bool, yield_cpu: bool = False
) -> DataLoader:
    """In-order loader of whole batches (``batch_size=None``: the dataset already batches).

    ``yield_cpu`` (CPU runs, where the forward's threads use every core) lowers the workers'
    scheduling priority: decoding then fills the gaps between the forward's parallel regions
    instead of stalling one of its threads, which stalls them all until the straggler catches up.
    """
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
        if yield_cpu:
            kwargs.update(worker_init_fn=_lower_priority)
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=pin_memory, **kwargs)


def _lower_priority(_worker_id: int) -> None:
    import os

    try:
        os.nice(10)
    except OSError:  # not permitted here: run at normal priority
        pass
