"""The fast paths give exactly what the reference libraries give: OpenSlide's pixels, zarr's shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from wsi_ssl.slide.readers import open_slide
from wsi_ssl.stores.shard_writer import write_shard
from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, write_tiles


def regions(width: int, height: int) -> list[tuple[int, int, int, int]]:
    # inside, at the origin, across the right edge, across the bottom edge, fully outside
    return [
        (width // 3, height // 3, 517, 301),
        (0, 0, 300, 300),
        (width - 100, 5, 300, 200),
        (13, height - 50, 100, 100),
        (width + 10, 0, 50, 50),
    ]


@pytest.mark.parametrize("name", ["s050.tiff", "s025.tiff", "pen.tiff"])
def test_native_tiff_reads_equal_openslide(slides_dir: Path, name: str) -> None:
    fast, ref = open_slide(slides_dir / name), open_slide(slides_dir / name, fast_reads=False)
    assert fast.pixel_backend == "native-tiff" and ref.pixel_backend == "openslide"
    for lv in ref.levels:
        for x, y, w, h in regions(lv.width, lv.height):
            x0, y0 = int(x * lv.downsample), int(y * lv.downsample)
            assert np.array_equal(fast.read_region(x0, y0, lv.index, w, h), ref.read_region(x0, y0, lv.index, w, h))


def test_native_reads_on_real_svs(shared_data: Path) -> None:
    svs = shared_data / "wsi" / "CMU-1-Small-Region.svs"
    fast, ref = open_slide(svs), open_slide(svs, fast_reads=False)
    assert fast.pixel_backend == "native-tiff"
    for x, y, w, h in regions(*ref.dimensions):
        assert np.array_equal(fast.read_region(x, y, 0, w, h), ref.read_region(x, y, 0, w, h))


def test_dicom_keeps_openslide(shared_data: Path) -> None:
    dcm = sorted((shared_data / "wsi" / "dicom_cmu1_small_region_12levels").glob("*.dcm"))[0]
    assert open_slide(dcm).pixel_backend == "openslide"


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_shard_writer_matches_zarr_byte_for_byte(tmp_path: Path, codec: str) -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (1, 24, 24, 3), dtype=np.uint8)
    tiles = np.clip(base + rng.integers(-20, 20, (11, 24, 24, 3)), 0, 255).astype(np.uint8)
    paths = []
    for how in ("zarr", "ours"):
        p = tmp_path / f"{how}.zarr"
        create_tile_arrays(p, TileArraysSpec(11, 24, shard_tiles=4, codec=codec), np.zeros((11, 2)), np.ones(11), {})
        for start in range(0, 11, 4):  # two full shards and a short last one
            (write_tiles if how == "zarr" else write_shard)(p, start, tiles[start : start + 4])
        paths.append(p)
    for shard in range(3):
        key = f"tiles/c/{shard}/0/0/0"
        assert (paths[0] / key).read_bytes() == (paths[1] / key).read_bytes()
    assert np.array_equal(zarr.open_array(str(paths[1] / "tiles"))[:], zarr.open_array(str(paths[0] / "tiles"))[:])


def test_shard_writer_falls_back_for_unaligned_blocks(tmp_path: Path) -> None:
    p = tmp_path / "x.zarr"
    tiles = np.arange(6 * 8 * 8 * 3, dtype=np.uint8).reshape(6, 8, 8, 3)
    create_tile_arrays(p, TileArraysSpec(6, 8, shard_tiles=4, codec="png"), np.zeros((6, 2)), np.ones(6), {})
    write_shard(p, 1, tiles[1:3])  # not a whole shard: zarr's read-modify-write path
    got = zarr.open_array(str(p / "tiles"))[:]
    assert np.array_equal(got[1:3], tiles[1:3]) and not got[0].any()
