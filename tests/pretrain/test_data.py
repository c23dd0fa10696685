"""The dataset over many tile stores and its per-rank sharding."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_store, patterned_tiles

from wsi_ssl.pretrain.data import PretrainDataModule, ShardedEpochSampler, TileDataset, TileIndex, resolve_stores
from wsi_ssl.stores.tile_store import TileArraysSpec, TileStoreError, create_tile_arrays, store_path


@pytest.mark.parametrize("n,world", [(100, 4), (103, 4), (7, 3)])
def test_ranks_get_disjoint_equal_shards_that_cover_the_epoch(n: int, world: int) -> None:
    shards = []
    for rank in range(world):
        sampler = ShardedEpochSampler(n, rank, world, seed=5)
        sampler.set_epoch(3)
        shards.append(list(sampler))
    assert len({len(s) for s in shards}) == 1  # lock-step ranks
    flat = [i for s in shards for i in s]
    assert set(flat) == set(range(n))
    padding = len(flat) - n
    assert padding < world
    if padding == 0:
        assert all(not set(a) & set(b) for i, a in enumerate(shards) for b in shards[i + 1 :])


def test_epochs_reshuffle_across_slides_and_are_reproducible() -> None:
    a, b = ShardedEpochSampler(50, 0, 1, seed=1), ShardedEpochSampler(50, 0, 1, seed=1)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(50))
    assert list(b) == first


def test_data_module_shards_per_rank_through_its_loaders(tmp_path: Path) -> None:
    for i in range(2):
        make_store(tmp_path, f"s{i}", n=12, seed=i)
    index = TileIndex.build(resolve_stores([tmp_path]))
    ds = TileDataset(index, np.arange(len(index)))
    dm = PretrainDataModule(ds, batch_size=3, num_workers=0, seed=0)
    seen = []
    for rank in range(2):
        batches = list(dm.loader(rank, 2))
        seen.append({tuple(t.flatten()[:64].tolist()) for b in batches for t in b})
        assert all(b.shape == (3, 3, 32, 32) and b.dtype == torch.uint8 for b in batches)
    assert not seen[0] & seen[1]


def test_dataset_reads_the_right_tiles_and_pickles_without_handles(tmp_path: Path) -> None:
    make_store(tmp_path, "a", n=10, seed=0)
    make_store(tmp_path, "b", n=6, seed=1)
    index = TileIndex.build(resolve_stores([tmp_path]))
    assert len(index) == 16 and index.tile_size == 32 and index.mpp == 1.0
    train, hold = index.split_holdout(4, seed=0)
    assert len(hold) == 4 and not set(train) & set(hold) and len(train) + len(hold) == 16
    ds = TileDataset(index, np.arange(16))
    ds[12]  # opens store b
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._open == {}
    expected = patterned_tiles(6, 32, 1)[2]  # PNG store: lossless
    assert np.array_equal(clone[12].permute(1, 2, 0).numpy(), expected)
    assert np.array_equal(ds.load_all()[12].permute(1, 2, 0).numpy(), expected)


def test_mixed_tile_sizes_and_incomplete_stores_are_refused(tmp_path: Path) -> None:
    make_store(tmp_path / "x", "a", n=4, size=32)
    make_store(tmp_path / "x", "b", n=4, size=48)
    with pytest.raises(TileStoreError, match="different tile sizes"):
        TileIndex.build(resolve_stores([tmp_path / "x"]))
    path = store_path(tmp_path / "y", "half")
    create_tile_arrays(
        path, TileArraysSpec(n_tiles=2, tile_size=32), np.zeros((2, 2)), np.ones(2), {"slide_id": "half"}
    )
    with pytest.raises(TileStoreError, match="incomplete"):
        TileIndex.build(resolve_stores([tmp_path / "y"]))
    with pytest.raises(TileStoreError, match="not a folder of tile stores"):
        resolve_stores([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TileStoreError, match="no tile stores"):
        resolve_stores([tmp_path / "empty"])
