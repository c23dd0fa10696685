"""Tile from a bucket into a bucket against moto's S3 server: the same tiles as from local disk,
ranged reads (bytes per tile near the compressed tile size), and a killed run that resumes.

Everything goes through the CLI with ``s3://`` URLs and nothing but the standard environment
(conftest.py). The reference is ``local_tiles``: the same slides tiled from local disk.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from wsi_ssl.cli import main
from wsi_ssl.slide.readers import remote as remote_slides
from wsi_ssl.stores import shard_writer
from wsi_ssl.stores.tile_store import IncompleteStoreError, TileStore

Upload = Callable[[Path, str], str]
RunKilled = Callable[[list[str], Callable[[], None]], int]


def _s3() -> fsspec.AbstractFileSystem:
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    return fs


def _needed_source_bytes(slide: Path, coords: np.ndarray, tile: int) -> int:
    """Compressed bytes of the level-0 source tiles that the kept tiles overlap (what any reader
    must fetch at least)."""
    with tifffile.TiffFile(slide) as tf:
        page = tf.pages[0]
        counts = np.asarray(page.databytecounts)
        tw, across = int(page.tilewidth), -(-int(page.imagewidth) // int(page.tilewidth))
    need = {
        ty * across + tx
        for x, y in coords.tolist()
        for ty in range(y // tw, (y + tile - 1) // tw + 1)
        for tx in range(x // tw, (x + tile - 1) // tw + 1)
    }
    return int(counts[sorted(need)].sum())


def test_tile_from_bucket_into_bucket_reads_tiles_not_files(
    bucket: str,
    local_slides: Path,
    local_tiles: Path,
    tile_args: list[str],
    upload: Upload,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A folder (prefix) of two slides: tiles identical to tiling the local files (tiffslide and
    OpenSlide decode the same JPEG source tiles), and the bytes fetched stay near the compressed
    size of the source tiles the kept tiles need, far from the files' size (kept tiles are sparse)."""
    for name in ("a.tiff", "b.tiff"):
        upload(local_slides / name, f"{bucket}/slides/{name}")
    before = remote_slides.fetched()
    assert main(["tile", f"{bucket}/slides/", "--out", f"{bucket}/tiles", *tile_args]) == 0
    fetched = remote_slides.fetched().bytes - before.bytes
    requests = remote_slides.fetched().requests - before.requests
    assert "tiled 2/2 slides" in capsys.readouterr().out

    needed = low_levels = file_bytes = n_tiles = 0
    for sid in ("a", "b"):
        remote, local = TileStore(f"{bucket}/tiles/{sid}.zarr"), TileStore(local_tiles / f"{sid}.zarr")
        assert remote.attrs["source_path"] == f"{bucket}/slides/{sid}.tiff"
        np.testing.assert_array_equal(remote.coords, local.coords)
        np.testing.assert_array_equal(remote.tiles(), local.tiles())
        assert remote.attrs["pixel_backend"] == "native-tiff"  # the local file's decoder (remote.py)
        slide = local_slides / f"{sid}.tiff"
        needed += _needed_source_bytes(slide, remote.coords, 224)
        with tifffile.TiffFile(slide) as tf:  # the tissue mask reads a low level whole
            low_levels += sum(int(np.sum(p.databytecounts)) for p in tf.pages[1:])
        file_bytes += os.path.getsize(slide)
        n_tiles += len(remote)
    print(
        f"{n_tiles} tiles: fetched {fetched} B ({fetched / n_tiles:.0f} B/tile) in {requests} range requests; "
        f"needed {needed} B; files {file_bytes} B"
    )
    assert fetched <= 1.5 * needed + low_levels + 2 * 2 * remote_slides.BLOCK_SIZE
    assert fetched < 0.8 * file_bytes
    manifest = pd.read_csv(_s3().open(f"{bucket}/tiles/manifest.csv"))
    assert sorted(manifest["status"]) == ["done", "done"]


def test_remote_region_read_fetches_its_source_tiles_in_one_batch(
    bucket: str, local_slides: Path, upload: Upload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A region read at a URL: the native decoder (as for the local file), the same pixels, and
    one request per row of source tiles (a row is stored back to back) carrying just their
    compressed bytes."""
    from wsi_ssl.slide.readers import open_slide

    url = upload(local_slides / "a.tiff", f"{bucket}/a.tiff")
    x0, y0, size = 300, 200, 900  # away from the probe read at the centre (native_tiff.probe_box)
    with tifffile.TiffFile(local_slides / "a.tiff") as tf:
        page = tf.pages[0]
        tw, across = int(page.tilewidth), -(-int(page.imagewidth) // int(page.tilewidth))
        rows = range(y0 // tw, (y0 + size - 1) // tw + 1)
        cols = range(x0 // tw, (x0 + size - 1) // tw + 1)
        needed = int(sum(page.databytecounts[r * across + c] for r in rows for c in cols))
    with open_slide(url) as remote, open_slide(local_slides / "a.tiff") as local:
        assert remote.pixel_backend == "native-tiff"
        before = remote_slides.fetched()
        got = remote.read_region(x0, y0, 0, size, size)
        after = remote_slides.fetched()
        np.testing.assert_array_equal(got, local.read_region(x0, y0, 0, size, size))

        # Announced regions beyond half of the prefetch memory wait for their turn (block_reader);
        # source tiles shared by regions count once.
        monkeypatch.setattr(remote_slides, "PREFETCH_KEEP", 2 * needed)
        region, elsewhere = (x0, y0, 0, size, size), (x0 + size, y0 + size, 0, size, size)
        assert remote.prefetch_regions([region, elsewhere, region]) == 1  # type: ignore[attr-defined]
        assert remote.prefetch_regions([region, region, elsewhere]) == 2  # type: ignore[attr-defined]
    assert after.requests - before.requests <= len(rows) < len(rows) * len(cols)
    assert needed <= after.bytes - before.bytes <= needed + len(rows) * remote_slides.MERGE_GAP


def _die_after_shards(n: int) -> Callable[[], None]:
    """Arm a run to be SIGKILLed right after its ``n``-th shard file is written."""

    def arm() -> None:
        real = shard_writer.ShardTarget.write
        written = [0]

        def write(self: Any, start: int, encoded: list[bytes]) -> None:
            real(self, start, encoded)
            written[0] += 1
            if written[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)

        shard_writer.ShardTarget.write = write  # type: ignore[method-assign]

    return arm


def test_killed_tiling_resumes_and_incomplete_stores_are_refused(
    bucket: str,
    local_slides: Path,
    local_tiles: Path,
    tile_args: list[str],
    upload: Upload,
    run_killed: RunKilled,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upload(local_slides / "b.tiff", f"{bucket}/slides/b.tiff")  # 5 kept tiles
    out = f"{bucket}/tiles"
    argv = ["tile", f"{bucket}/slides/b.tiff", "--out", out, *tile_args, "--set", "shard_tiles=2"]
    assert run_killed(argv, _die_after_shards(2)) == -signal.SIGKILL  # 2 of 3 shards written
    fs = _s3()
    assert len(fs.find(f"{out}/b.zarr/tiles/c")) == 2
    assert zarr.open_group(f"{out}/b.zarr", mode="r").attrs["complete"] is False
    with pytest.raises(IncompleteStoreError):
        TileStore(f"{out}/b.zarr")

    # Rerun: the incomplete store is redone, and then equals the local reference; a third run
    # skips the complete store.
    capsys.readouterr()
    assert main(["tile", f"{bucket}/slides/b.tiff", "--out", out, *tile_args]) == 0
    assert "tiled 1/1 slides" in capsys.readouterr().out
    np.testing.assert_array_equal(TileStore(f"{out}/b.zarr").tiles(), TileStore(local_tiles / "b.zarr").tiles())
    assert main(["tile", f"{bucket}/slides/b.tiff", "--out", out, *tile_args]) == 0
    assert "1 already complete" in capsys.readouterr().out


def test_bad_remote_inputs_name_the_problem(
    bucket: str, tile_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tile", f"{bucket}/nothing/", "--out", f"{bucket}/t", *tile_args]) == 2
    assert "no slide files found" in capsys.readouterr().err
    target = f"{bucket}/x.tiff"
    _s3().pipe(target.removeprefix("s3://"), b"not a tiff")
    assert main(["tile", target, "--out", f"{bucket}/t", *tile_args, "--backend", "openslide"]) == 1
    assert "slides at URLs are read with tiffslide" in capsys.readouterr().err
    assert main(["tile", target, "--out", f"{bucket}/t", *tile_args]) == 1
    assert "x.tiff: tiffslide: not a TIFF file" in capsys.readouterr().err
