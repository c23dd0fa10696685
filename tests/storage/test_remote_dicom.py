"""DICOM series in a bucket (as IDC serves them): grouped by their headers' UIDs and tiled in
place through wsidicom's fsspec reads, with the same tiles as the same files on local disk."""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from slide_files import DICOM_NAME, copy_series

from wsi_ssl.cli import main
from wsi_ssl.slide.discover import discover_slides
from wsi_ssl.slide.readers import open_slide
from wsi_ssl.stores.tile_store import TileStore


@pytest.fixture(scope="module")
def flat_series(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared DICOM series and a copy of it as a second series (new UIDs), in one folder."""
    src = shared_data / "wsi" / DICOM_NAME
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    flat = tmp_path_factory.mktemp("dicom-flat")
    copy_series(src, flat, "a-", new_uids=False)
    copy_series(src, flat, "b-", new_uids=True)
    return flat


def test_dicom_series_in_a_bucket_are_found_and_tiled_as_on_disk(
    bucket: str, flat_series: Path, tile_args: list[str], tmp_path: Path
) -> None:
    fs = fsspec.filesystem("s3")
    prefix = f"{bucket}/cohort"
    for f in sorted(flat_series.glob("*.dcm")):
        fs.put_file(str(f), f"{prefix.removeprefix('s3://')}/{f.name}")
    fs.invalidate_cache()

    local = {e.slide_id: e for e in discover_slides([flat_series])}
    remote = {e.slide_id: e for e in discover_slides([prefix])}
    assert set(remote) == set(local) and len(remote) == 2  # two series, named by their UIDs
    sid = sorted(remote)[0]
    with open_slide(remote[sid].path) as slide, open_slide(local[sid].path, backend="wsidicom") as ref:
        assert slide.backend == "wsidicom" and slide.dimensions == ref.dimensions == (2220, 2967)
        assert slide.mpp == pytest.approx(ref.mpp) and slide.ycbcr_fix == ref.ycbcr_fix
        np.testing.assert_array_equal(slide.read_region(600, 800, 0, 256, 256), ref.read_region(600, 800, 0, 256, 256))

    out_local, out_remote = tmp_path / "local", f"{bucket}/tiles"
    assert main(["tile", str(flat_series), "--out", str(out_local), "--backend", "wsidicom", *tile_args]) == 0
    assert main(["tile", prefix, "--out", out_remote, *tile_args]) == 0
    fs.invalidate_cache()
    with fs.open(f"{out_remote.removeprefix('s3://')}/manifest.csv") as fh:
        manifest = pd.read_csv(fh)
    assert sorted(manifest["slide_id"]) == sorted(remote) and (manifest["status"] == "done").all()
    for sid in remote:  # the same tiles, pixel for pixel, as the same series tiled from local disk
        got, ref_store = TileStore(f"{out_remote}/{sid}.zarr"), TileStore(out_local / f"{sid}.zarr")
        assert len(got) == len(ref_store) > 0
        np.testing.assert_array_equal(got.coords, ref_store.coords)
        np.testing.assert_array_equal(got.tiles(), ref_store.tiles())
