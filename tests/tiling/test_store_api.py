"""The tile-store reader later stages use: length, tiles by index and in batches, attrs, refusal of incomplete stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsi_ssl.stores.tile_store import (
    IncompleteStoreError,
    TileArraysSpec,
    TileStore,
    TileStoreError,
    create_tile_arrays,
    mark_complete,
    write_tiles,
)


def make_store(path: Path, n: int = 10, t: int = 16, codec: str = "raw", complete: bool = True) -> np.ndarray:
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (n, t, t, 3), dtype=np.uint8)
    coords = np.stack([np.arange(n) * t, np.zeros(n)], 1)
    create_tile_arrays(
        path,
        TileArraysSpec(n, t, shard_tiles=4, codec=codec),
        coords,
        np.linspace(0.3, 1, n),
        {"slide_id": "x", "mpp": 0.5, "tile_size": t, "slide_mpp": 0.25},
    )
    for start in range(0, n, 4):
        write_tiles(path, start, tiles[start : start + 4])
    if complete:
        mark_complete(path)
    return tiles


def test_reader_api(tmp_path: Path) -> None:
    tiles = make_store(tmp_path / "x.zarr")
    s = TileStore(tmp_path / "x.zarr")
    assert len(s) == 10 and s.slide_id == "x" and s.mpp == 0.5 and s.tile_size == 16 and s.shard_size == 4
    assert np.array_equal(s.tile(3), tiles[3]) and np.array_equal(s.tile(-1), tiles[-1])
    t, c = s[5]
    assert np.array_equal(t, tiles[5]) and c.tolist() == [80, 0]
    assert np.array_equal(s.tiles(2, 9), tiles[2:9])
    assert np.array_equal(s.take([7, 1, 7, 0]), tiles[[7, 1, 7, 0]])
    batches = list(s.iter_batches(4))
    assert [b[2] for b in batches] == [0, 4, 8] and np.array_equal(np.concatenate([b[0] for b in batches]), tiles)
    assert s.attrs["complete"] is True and s.attrs["format_version"] == 1
    assert s.tissue.dtype == np.float32 and s.coords.dtype == np.int64
    with pytest.raises(IndexError):
        s.tile(10)


def test_pickles_by_path(tmp_path: Path) -> None:
    import pickle

    tiles = make_store(tmp_path / "x.zarr")
    s2 = pickle.loads(pickle.dumps(TileStore(tmp_path / "x.zarr")))
    assert np.array_equal(s2.tile(2), tiles[2])


def test_incomplete_and_missing_stores_are_refused(tmp_path: Path) -> None:
    make_store(tmp_path / "half.zarr", complete=False)
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        TileStore(tmp_path / "half.zarr")
    with pytest.raises(TileStoreError, match="not found"):
        TileStore(tmp_path / "none.zarr")


@pytest.mark.parametrize("codec", ["jpeg", "png", "raw"])
def test_codecs_roundtrip(tmp_path: Path, codec: str) -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.stack([xx * 6, yy * 6, (xx + yy) * 3], -1).astype(np.uint8)
    path = tmp_path / f"{codec}.zarr"
    create_tile_arrays(
        path,
        TileArraysSpec(2, 32, codec=codec),
        np.zeros((2, 2)),
        np.ones(2),
        {"slide_id": codec, "mpp": 0.5, "tile_size": 32},
    )
    write_tiles(path, 0, np.stack([smooth, smooth[::-1]]))
    mark_complete(path)
    got = TileStore(path).tiles()
    err = np.abs(got.astype(int) - np.stack([smooth, smooth[::-1]])).max()
    assert err == 0 if codec != "jpeg" else err < 12
