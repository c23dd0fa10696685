"""Every format reads through its maintained reader with true MPP and the same pixels; every file
the pipeline must not tile is refused with a sentence naming why (never a bare exception)."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile

from wsi_ssl.cli import main
from wsi_ssl.slide.readers import SlideReader, SlideRefusedError, open_slide
from wsi_ssl.slide.thumbnail import read_at_mpp

FLUO = "fluorescence/multiplex image with"


@pytest.mark.parametrize(
    ("name", "backend", "levels"),
    [
        ("brightfield.ome.tif", "tiffslide", 3),
        ("czi_bf.czi", "czi", 3),
        ("zarr_bf.ome.zarr", "ome-zarr", 2),
    ],
)
def test_brightfield_formats_read_the_written_pixels(
    formats_dir: Path, he_truth: np.ndarray, name: str, backend: str, levels: int
) -> None:
    truth = he_truth
    with open_slide(formats_dir / name) as slide:
        assert isinstance(slide, SlideReader) and slide.backend == backend
        assert slide.dimensions == (1536, 1024) and slide.mpp == pytest.approx(0.5) and slide.mpp_source == "metadata"
        assert len(slide.levels) >= levels - 1 and slide.levels[1].downsample == pytest.approx(2.0)
        region = slide.read_region(300, 200, 0, 128, 96)
        assert np.abs(region.astype(int) - truth[200:296, 300:428]).max() <= 2  # lossless or zlib
        half = slide.read_region(300, 200, 1, 64, 48)
        assert np.abs(half.astype(float).mean((0, 1)) - truth[200:296, 300:428].mean((0, 1))).max() < 3
        thumb = slide.thumbnail((256, 256))
        assert thumb.shape == (171, 256, 3)
        info = slide.describe()
        assert info["channels"] == 3 and info["photometric"] in ("RGB", "rgb")


@pytest.mark.parametrize(
    ("name", "n", "names"),
    [
        ("fluo.ome.tif", 5, "DAPI, CD3, CD8, PanCK, FOXP3"),
        ("multiplex.qptiff", 5, "DAPI, CD8, PD-L1, CK, Autofluorescence"),
        ("czi_fluo.czi", 4, "DAPI, FITC, TRITC, Cy5"),
        ("zarr_fluo.ome.zarr", 6, ""),
    ],
)
def test_fluorescence_is_refused_with_its_channels(formats_dir: Path, name: str, n: int, names: str) -> None:
    with pytest.raises(SlideRefusedError) as err:
        open_slide(formats_dir / name)
    expected = f"{FLUO} {n} channels" + (f" ({names})" if names else "")
    assert f"{expected}: this pipeline tiles brightfield H&E/IHC only" in str(err.value)


def test_truncated_and_unsupported_files_are_named(shared_data: Path, tmp_path: Path) -> None:
    raw = (shared_data / "wsi" / "CMU-1-Small-Region.svs").read_bytes()
    cut = tmp_path / "cut.svs"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SlideRefusedError, match=r"truncated or corrupt \(size 969,477 bytes, expected at least"):
        open_slide(cut)
    vsi = tmp_path / "scan.vsi"
    vsi.write_bytes(b"\0" * 64)
    with pytest.raises(SlideRefusedError, match="Olympus/Evident cellSens VSI files are not supported"):
        open_slide(vsi)


def test_a_run_records_every_refusal_and_tiles_the_rest(formats_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    raw = (shared_data / "wsi" / "CMU-1-Small-Region.svs").read_bytes()
    cut = formats_dir / "cut.svs"
    cut.write_bytes(raw[: len(raw) // 2])
    try:
        out = tmp_path / "out"
        code = main(["tile", str(formats_dir), "--out", str(out), "--no-progress", "--workers", "1", "--no-qc"])
    finally:
        cut.unlink()
    assert code == 1  # some slides failed, the run went on
    with open(out / "manifest.csv") as f:
        rows = {r["slide_id"]: r for r in csv.DictReader(f)}
    for sid in ("brightfield.ome", "czi_bf", "zarr_bf", "plain"):
        assert rows[sid]["status"] == "done" and int(rows[sid]["n_tiles"]) > 0, rows[sid]
    for sid in ("fluo.ome", "multiplex", "czi_fluo", "zarr_fluo"):
        assert rows[sid]["status"] == "failed" and FLUO in rows[sid]["error"], rows[sid]
    assert "truncated or corrupt (size" in rows["cut"]["error"]
    for row in rows.values():  # messages, not exception class names
        assert not row["error"].split(":")[0].strip().endswith(("Error", "Exception")), row


def test_info_shows_reader_channels_and_photometric(formats_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(formats_dir / "brightfield.ome.tif")]) == 0
    out = capsys.readouterr().out
    assert "reader     tiffslide" in out and "channels 3" in out and "photometric RGB" in out
    assert main(["info", str(formats_dir / "zarr_bf.ome.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "ome-zarr" and info["format"] == "ome-zarr" and info["channels"] == 3
    assert main(["info", str(formats_dir / "multiplex.qptiff")]) == 1
    assert f"{FLUO} 5 channels" in capsys.readouterr().err


def test_non_pyramidal_tiff_thumbnail_has_bounded_memory(tmp_path: Path) -> None:
    """A 10,240 px single-level TIFF (315 MB of pixels) is shrunk block by block: the peak of
    Python-visible memory stays a fraction of one level (the block, plus the native decoder's
    96-tile cache: a constant, whatever the slide's size)."""
    import imagecodecs

    n, edge = 20, 512
    glass = imagecodecs.jpeg8_encode(np.full((edge, edge, 3), 242, np.uint8), level=90)
    pink = imagecodecs.jpeg8_encode(np.full((edge, edge, 3), (200, 120, 180), np.uint8), level=90)
    tiles = (
        pink if n // 4 <= tx < 3 * n // 4 and n // 4 <= ty < 3 * n // 4 else glass for ty in range(n) for tx in range(n)
    )
    path = tmp_path / "flat.tif"
    tifffile.imwrite(
        path,
        tiles,
        shape=(n * edge, n * edge, 3),
        dtype="uint8",
        tile=(edge, edge),
        photometric="rgb",
        compression="jpeg",
        resolution=(1e4 / 0.5, 1e4 / 0.5),
        resolutionunit="CENTIMETER",
    )
    level_bytes = (n * edge) ** 2 * 3
    with open_slide(path) as slide:
        assert len(slide.levels) == 1
        tracemalloc.start()
        try:
            image, mpp = read_at_mpp(slide, 16.0, block=1024)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert image.shape == (320, 320, 3) and mpp == pytest.approx(16.0)
    assert np.abs(image[160, 160].astype(int) - (200, 120, 180)).max() <= 3 and image[10, 10, 0] >= 238
    assert peak < level_bytes / 3, f"peak {peak / 1e6:.0f} MB for a {level_bytes / 1e6:.0f} MB level"


def test_thumbnail_of_a_level_too_big_to_hold_is_built_by_blocks(
    formats_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wsi_ssl.slide.readers.base as base

    with open_slide(formats_dir / "plain.tiff") as slide:
        whole = slide.thumbnail((192, 192))
        monkeypatch.setattr(base, "_WHOLE_LEVEL_PIXELS", 1000)  # every level now counts as too big
        blocks = slide.thumbnail((192, 192))
    assert blocks.shape == whole.shape == (128, 192, 3)
    assert np.abs(blocks.astype(int) - whole).mean() < 3
