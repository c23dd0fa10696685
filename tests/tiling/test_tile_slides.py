"""Slides in, stores out: pixels checked against OpenSlide, attrs against Contract 1."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import openslide

from wsi_ssl.cli import main
from wsi_ssl.stores.tile_store import TileStore, find_tile_stores
from wsi_ssl.synthetic import tile_labels, truth_path_for


def tile(args: list[str]) -> int:
    return main(["tile", *args, "--no-progress"])


def manifest(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "manifest.csv") as f:
        return {r["slide_id"]: r for r in csv.DictReader(f)}


def test_generated_slides_at_several_mpps(slides_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        tile(
            [
                str(slides_dir / "s050.tiff"),
                str(slides_dir / "s025.tiff"),
                "--out",
                str(out),
                "--codec",
                "png",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    stores = {p.stem: TileStore(p) for p in find_tile_stores(out)}
    assert set(stores) == {"s050", "s025"}
    # 0.25 um/px scan tiled at 0.5: read natively from level 1, coords in level-0 px.
    s = stores["s025"]
    assert (s.attrs["level"], s.attrs["resized"], s.attrs["slide_mpp"], s.mpp) == (1, False, 0.25, 0.5)
    assert s.attrs["complete"] is True and s.attrs["format_version"] == 1 and s.attrs["backend"] == "openslide"
    assert np.all(s.coords % 2 == 0)
    ref = openslide.OpenSlide(str(slides_dir / "s025.tiff"))
    for i in range(0, len(s), max(1, len(s) // 12)):
        t, (x, y) = s[i]
        expect = np.asarray(ref.read_region((int(x), int(y)), 1, (224, 224)).convert("RGB"))
        assert np.array_equal(t, expect), f"tile {i} differs from OpenSlide read_region"
    assert np.all(s.tissue >= 0.25)
    # Tiles the detector calls mostly tissue are tissue in the generator's truth.
    labels = tile_labels(truth_path_for(slides_dir / "s025.tiff"), s.coords, 448)
    assert np.mean(labels[s.tissue >= 0.6] != 0) > 0.9
    assert (out / "qc" / "s025.png").is_file() and (out / "qc" / "s050.png").is_file()
    rows = manifest(out)
    assert rows["s025"]["status"] == "done" and int(rows["s025"]["n_tiles"]) == len(s)


def test_resized_reads_match_area_resampling(slides_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        tile(
            [
                str(slides_dir / "s050.tiff"),
                "--out",
                str(out),
                "--mpp",
                "0.8",
                "--tile-size",
                "128",
                "--codec",
                "png",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    s = TileStore(out / "s050.zarr")
    assert s.attrs["level"] == 0 and s.attrs["resized"] is True and s.attrs["read_size"] == 205
    ref = openslide.OpenSlide(str(slides_dir / "s050.tiff"))
    for i in (0, len(s) // 2, len(s) - 1):
        t, (x, y) = s[i]
        region = np.asarray(ref.read_region((int(x), int(y)), 0, (205, 205)).convert("RGB"))
        assert np.array_equal(t, cv2.resize(region, (128, 128), interpolation=cv2.INTER_AREA))


def test_real_svs_matches_openslide(shared_data: Path, tmp_path: Path) -> None:
    svs = shared_data / "wsi" / "CMU-1-Small-Region.svs"
    ref = openslide.OpenSlide(str(svs))
    lossless, lossy = tmp_path / "png", tmp_path / "jpeg"
    assert tile([str(svs), "--out", str(lossless), "--codec", "png", "--workers", "1"]) == 0
    assert tile([str(svs), "--out", str(lossy), "--workers", "1"]) == 0
    exact, jpeg = TileStore(lossless / "CMU-1-Small-Region.zarr"), TileStore(lossy / "CMU-1-Small-Region.zarr")
    assert exact.attrs["resized"] is False  # 0.499 is within 2% of 0.5: native pixels
    assert len(exact) == len(jpeg) > 30
    assert np.array_equal(exact.coords, jpeg.coords)
    errors = []
    for i in range(len(exact)):
        x, y = (int(v) for v in exact.coords[i])
        expect = np.asarray(ref.read_region((x, y), 0, (224, 224)).convert("RGB"))
        assert np.array_equal(exact.tile(i), expect), f"lossless tile {i} differs from read_region"
        errors.append(np.abs(jpeg.tile(i).astype(np.int16) - expect).mean())
    # Documented tolerance of the default JPEG q90 4:4:4 codec (README, "Tile codec").
    assert max(errors) < 3.0 and float(np.mean(errors)) < 2.0


def test_dicom_folder_gives_the_svs_grid(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        tile(
            [
                str(shared_data / "wsi" / "CMU-1-Small-Region.svs"),
                str(shared_data / "wsi" / "dicom_cmu1_small_region_12levels"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    svs = TileStore(out / "CMU-1-Small-Region.zarr")
    dcm = TileStore(out / "dicom_cmu1_small_region_12levels.zarr")
    assert dcm.attrs["vendor"] == "dicom" and dcm.attrs["color_fix"] == "ycbcr->rgb"
    a = {tuple(c) for c in svs.coords.tolist()}
    b = {tuple(c) for c in dcm.coords.tolist()}
    assert len(a & b) / len(a | b) > 0.95
    # Same pixels up to the two files' JPEG differences (YCbCr decoded to RGB correctly).
    common = sorted(a & b)[:10]
    ia = {c: i for i, c in enumerate(map(tuple, svs.coords.tolist()))}
    ib = {c: i for i, c in enumerate(map(tuple, dcm.coords.tolist()))}
    diff = [np.abs(svs.tile(ia[c]).astype(int) - dcm.tile(ib[c])).mean() for c in common]
    assert np.mean(diff) < 8


def test_tiny_svs_is_reported_not_crashed(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert tile([str(shared_data / "wsi" / "openslide-python_small.svs"), "--out", str(out)]) == 1
    row = manifest(out)["openslide-python_small"]
    assert row["status"] == "failed" and "too small" in row["error"]


def test_overlap_and_min_tissue(slides_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert tile([str(slides_dir / "s050.tiff"), "--out", str(a), "--min-tissue", "0.9", "--workers", "1"]) == 0
    assert (
        tile(
            [
                str(slides_dir / "s050.tiff"),
                "--out",
                str(b),
                "--min-tissue",
                "0.9",
                "--overlap",
                "112",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    sa, sb = TileStore(a / "s050.zarr"), TileStore(b / "s050.zarr")
    assert sb.attrs["stride"] == 112 and len(sb) > 2.5 * len(sa)
    assert np.all(sa.tissue >= 0.9)
