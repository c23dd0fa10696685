"""The generated TIFF as slide readers see it: levels, MPP, pixels, lossless variants."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openslide
import pytest
import tiffslide

from wsi_ssl.synthetic import SlideTruth, write_slide

SMALL = {"width": 1280, "height": 960, "levels": 3}  # must match conftest.small_slide


def _level0(slide: openslide.OpenSlide | tiffslide.TiffSlide) -> np.ndarray:
    return np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB"))


def test_both_readers_see_levels_dimensions_and_mpp(small_slide: tuple[Path, SlideTruth]) -> None:
    path, _ = small_slide
    w, h = SMALL["width"], SMALL["height"]
    expected = tuple((w >> k, h >> k) for k in range(SMALL["levels"]))
    osl = openslide.OpenSlide(str(path))
    tsl = tiffslide.TiffSlide(path)
    assert osl.level_dimensions == expected
    assert tuple(tsl.level_dimensions) == expected
    assert [round(d) for d in osl.level_downsamples] == [1, 2, 4]
    assert float(osl.properties["openslide.mpp-x"]) == pytest.approx(0.5, rel=1e-6)
    assert float(osl.properties["openslide.mpp-y"]) == pytest.approx(0.5, rel=1e-6)
    assert float(tsl.properties["tiffslide.mpp-x"]) == pytest.approx(0.5, rel=1e-6)
    assert float(tsl.properties["tiffslide.mpp-y"]) == pytest.approx(0.5, rel=1e-6)


def test_openslide_and_tiffslide_decode_identical_level0(small_slide: tuple[Path, SlideTruth]) -> None:
    path, _ = small_slide
    a = _level0(openslide.OpenSlide(str(path)))
    b = _level0(tiffslide.TiffSlide(path))
    assert a.shape == (SMALL["height"], SMALL["width"], 3)
    np.testing.assert_array_equal(a, b)


def test_each_level_is_a_2x_downsample_of_the_one_before(small_slide: tuple[Path, SlideTruth]) -> None:
    slide = tiffslide.TiffSlide(small_slide[0])
    previous = _level0(slide).astype(np.float32)
    for k in range(1, slide.level_count):
        level = np.asarray(slide.read_region((0, 0), k, slide.level_dimensions[k]).convert("RGB"))
        expected = cv2.resize(previous, level.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(level.astype(np.float32) - expected).mean() < 2.0  # JPEG error only
        previous = level.astype(np.float32)


def test_slide_looks_like_tissue_on_glass(small_slide: tuple[Path, SlideTruth]) -> None:
    path, truth = small_slide
    rgb = _level0(tiffslide.TiffSlide(path)).astype(np.float32)
    cells = truth.class_map
    ds = truth.downsample
    per_cell = cv2.resize(rgb, (cells.shape[1], cells.shape[0]), interpolation=cv2.INTER_AREA)
    glass = per_cell[cells == 0].mean(axis=0)
    tissue = per_cell[cells != 0].mean(axis=0)
    assert ds == 4 and glass.min() > 225  # near-white background
    assert tissue.mean() < glass.mean() - 40  # stained tissue is clearly darker
    assert tissue[1] < tissue[0] and tissue[1] < tissue[2]  # H&E: green absorbed most


def test_write_mpp_false_gives_a_slide_without_mpp(tmp_path: Path) -> None:
    path = tmp_path / "nompp.tiff"
    write_slide(path, width=512, height=384, levels=2, seed=1, write_mpp=False)
    assert "openslide.mpp-x" not in openslide.OpenSlide(str(path)).properties
    assert tiffslide.TiffSlide(path).properties.get("tiffslide.mpp-x") is None


def test_mpp_is_written_for_other_resolutions(tmp_path: Path) -> None:
    path = tmp_path / "mpp025.tiff"
    write_slide(path, width=640, height=512, levels=2, seed=1, mpp=0.25)
    assert float(openslide.OpenSlide(str(path)).properties["openslide.mpp-x"]) == pytest.approx(0.25)
    assert float(tiffslide.TiffSlide(path).properties["tiffslide.mpp-x"]) == pytest.approx(0.25)


def test_lossless_variants_hold_the_same_pixels(tmp_path: Path) -> None:
    kwargs = {"width": 512, "height": 384, "levels": 2, "seed": 4}
    raw = write_slide(tmp_path / "raw.tiff", compression="none", **kwargs)
    write_slide(tmp_path / "zip.tiff", compression="zlib", **kwargs)
    write_slide(tmp_path / "jpg.tiff", compression="jpeg", **kwargs)
    pixels = {n: _level0(openslide.OpenSlide(str(tmp_path / f"{n}.tiff"))) for n in ("raw", "zip", "jpg")}
    np.testing.assert_array_equal(pixels["raw"], pixels["zip"])
    assert np.abs(pixels["raw"].astype(int) - pixels["jpg"]).mean() < 3.0
    assert raw.path.is_file()


def test_same_seed_same_file_different_seed_different_pixels(tmp_path: Path) -> None:
    kwargs = {"width": 512, "height": 384, "levels": 2, "pen_marks": True}
    write_slide(tmp_path / "a.tiff", seed=7, **kwargs)
    write_slide(tmp_path / "b.tiff", seed=7, **kwargs)
    write_slide(tmp_path / "c.tiff", seed=8, **kwargs)
    assert (tmp_path / "a.tiff").read_bytes() == (tmp_path / "b.tiff").read_bytes()
    a = _level0(tiffslide.TiffSlide(tmp_path / "a.tiff"))
    c = _level0(tiffslide.TiffSlide(tmp_path / "c.tiff"))
    assert np.abs(a.astype(int) - c).mean() > 5


def test_pen_marks_add_blue_and_green_ink(tmp_path: Path) -> None:
    kwargs = {"width": 1024, "height": 768, "levels": 1, "seed": 2}
    clean = write_slide(tmp_path / "clean.tiff", **kwargs)
    inked = write_slide(tmp_path / "pen.tiff", pen_marks=True, **kwargs)
    np.testing.assert_array_equal(clean.class_map, inked.class_map)  # ink does not move tissue

    def ink(name: str) -> tuple[int, int]:
        rgb = _level0(tiffslide.TiffSlide(tmp_path / name)).astype(int)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        blue = (b > r + 60) & (b > g + 40)
        green = (g > r + 40) & (g > b + 30)
        return int(blue.sum()), int(green.sum())

    assert ink("clean.tiff") == (0, 0)  # H&E alone never looks like marker ink
    blue, green = ink("pen.tiff")
    assert blue > 1000 and green > 1000


@pytest.mark.parametrize("bad", [{"width": 8}, {"mpp": 0.0}, {"tile": 100}, {"tumor_fraction": 1.5}])
def test_bad_arguments_are_refused_with_the_name(tmp_path: Path, bad: dict[str, float]) -> None:
    kwargs = {"width": 256, "height": 256, "levels": 1} | bad
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        write_slide(tmp_path / "bad.tiff", **kwargs)
    assert not (tmp_path / "bad.tiff").exists()


def test_banded_rendering_has_no_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendering in row bands (to bound memory) gives exactly the one-band image."""
    from wsi_ssl.synthetic import texture
    from wsi_ssl.synthetic.slide_writer import render_slide

    kwargs = {"width": 384, "height": 700, "mpp": 0.5, "seed": 4, "tumor_fraction": 0.4}
    monkeypatch.setattr(texture, "BAND_ROWS", 10**6)
    whole, _ = render_slide(**kwargs)
    monkeypatch.setattr(texture, "BAND_ROWS", 96)
    banded, _ = render_slide(**kwargs)
    np.testing.assert_array_equal(whole, banded)
