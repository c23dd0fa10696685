"""Ground truth: the truth file, tile labels, and that the truth matches the pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tiffslide

from wsi_ssl.synthetic import CLASS_NAMES, SlideTruth, load_truth, tile_labels, truth_path_for
from wsi_ssl.synthetic.truth import save_truth


def test_truth_file_sits_next_to_the_slide_and_round_trips(small_slide: tuple[Path, SlideTruth]) -> None:
    path, truth = small_slide
    assert truth.path == truth_path_for(path) == path.with_name("small.truth.npz")
    loaded = load_truth(truth.path)
    np.testing.assert_array_equal(loaded.class_map, truth.class_map)
    assert loaded.downsample == truth.downsample
    assert loaded.mpp == truth.mpp == 0.5
    with np.load(truth.path) as data:
        assert tuple(data["class_names"]) == CLASS_NAMES
    assert truth.class_map.shape == (960 // truth.downsample, 1280 // truth.downsample)


def test_requested_tumour_fraction_is_realised(small_slide: tuple[Path, SlideTruth]) -> None:
    truth = small_slide[1]
    assert truth.tumor_fraction == pytest.approx(0.35, abs=0.01)
    fractions = truth.class_fractions()
    assert set(fractions) == set(CLASS_NAMES[1:])
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_tile_labels_pick_the_majority_class(tmp_path: Path) -> None:
    cmap = np.zeros((8, 8), np.uint8)  # downsample 4: a 32 x 32 px slide
    cmap[:, 4:] = 1  # right half tumour
    cmap[0:2, 0:3] = 2  # 2 x 3 cells stroma in the top-left tile
    cmap[4:8, 0:4] = 3  # bottom-left tile lymphocytes
    cmap[4:8, 7] = 4  # a strip of fat inside the tumour tile at bottom right
    truth_file = tmp_path / "hand.truth.npz"
    save_truth(truth_file, cmap, downsample=4, mpp=0.5)
    coords = np.array([[0, 0], [16, 0], [0, 16], [16, 16], [100, 100]])
    labels = tile_labels(truth_file, coords, extent_level0=16)
    assert labels.dtype == np.int64
    # top-left: 10 background vs 6 stroma cells; right tiles tumour; outside the slide: background
    assert labels.tolist() == [0, 1, 3, 1, 0]
    # A footprint covering cells 0-1 only (8 px) in the top-left is mostly stroma.
    assert tile_labels(truth_file, np.array([[0, 0]]), extent_level0=8).tolist() == [2]


def test_tile_labels_refuse_a_non_positive_extent(small_slide: tuple[Path, SlideTruth]) -> None:
    with pytest.raises(ValueError, match="extent_level0"):
        tile_labels(small_slide[1], np.zeros((1, 2)), 0)


def test_missing_truth_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="truth file not found"):
        load_truth(tmp_path / "nothing.truth.npz")


def test_truth_matches_the_pixels(small_slide: tuple[Path, SlideTruth]) -> None:
    """Tiles labelled by the truth have the colour of their class."""
    path, truth = small_slide
    slide = tiffslide.TiffSlide(path)
    size = 64
    xs, ys = np.meshgrid(np.arange(0, 1280 - size, size), np.arange(0, 960 - size, size))
    coords = np.stack([xs.ravel(), ys.ravel()], axis=1)
    labels = tile_labels(truth, coords, size)
    rgb = np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB")).astype(np.float32)
    means = {c: [] for c in range(len(CLASS_NAMES))}
    for (x, y), c in zip(coords, labels):
        means[int(c)].append(rgb[y : y + size, x : x + size].mean())
    brightness = {CLASS_NAMES[c]: np.mean(v) for c, v in means.items() if v}
    assert brightness["background"] > 225
    # Nucleus-rich tumour is darker than fibrous stroma, which is darker than glass.
    assert brightness["tumor"] < brightness["stroma"] < brightness["background"]
