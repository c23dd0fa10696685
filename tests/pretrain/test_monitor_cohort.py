"""Cohort kNN: tiles cut from a generated slide are labelled from its truth file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.data import TileDataset, TileIndex, resolve_stores
from wsi_ssl.pretrain.labels import HeldOutTiles, build_knn_sets
from wsi_ssl.stores.tile_store import (
    TileArraysSpec,
    TileStore,
    create_tile_arrays,
    mark_complete,
    store_path,
    write_tiles,
)
from wsi_ssl.synthetic.labels import CohortLabels

synthetic = pytest.importorskip("wsi_ssl.synthetic")
tiffslide = pytest.importorskip("tiffslide")


def _store_from_slide(slide: Path, out: Path, tile: int = 32, mpp: float = 1.0) -> Path:
    """A grid of tiles read with tiffslide at 2x downsample (0.5 -> 1.0 um/px): a minimal tiler."""
    ts = tiffslide.TiffSlide(str(slide))
    w, h = ts.dimensions
    slide_mpp = float(ts.properties["tiffslide.mpp-x"])
    ds = mpp / slide_mpp
    step0 = int(tile * ds)
    coords = np.array(
        [(x, y) for y in range(0, h - step0 + 1, step0) for x in range(0, w - step0 + 1, step0)], np.int64
    )
    tiles = np.stack(
        [
            np.asarray(
                ts.read_region((int(x), int(y)), 0, (step0, step0)).convert("RGB").resize((tile, tile)), dtype=np.uint8
            )
            for x, y in coords
        ]
    )
    path = store_path(out, slide.stem)
    attrs = {
        "slide_id": slide.stem,
        "source_path": str(slide),
        "backend": "tiffslide",
        "mpp": mpp,
        "slide_mpp": slide_mpp,
        "level": 0,
        "downsample": ds,
        "tile_size": tile,
        "stride": tile,
    }
    create_tile_arrays(
        path,
        TileArraysSpec(n_tiles=len(coords), tile_size=tile, codec="png"),
        coords,
        np.ones(len(coords), np.float32),
        attrs,
    )
    write_tiles(path, 0, tiles)
    mark_complete(path)
    return path


def test_cohort_tiles_get_their_truth_classes_and_a_knn_set(tmp_path: Path) -> None:
    for i in range(3):
        synthetic.write_slide(tmp_path / "slides" / f"s{i}.tiff", width=512, height=512, levels=1, seed=i)
        _store_from_slide(tmp_path / "slides" / f"s{i}.tiff", tmp_path / "tiles")
    store = TileStore(store_path(tmp_path / "tiles", "s0"))
    idx = np.arange(len(store))
    got = CohortLabels().store_labels(store, idx)
    truth = synthetic.truth_path_for(tmp_path / "slides" / "s0.tiff")
    assert got is not None
    np.testing.assert_array_equal(got, synthetic.tile_labels(truth, store.coords, 64.0))  # 32 px x 1.0 / 0.5
    assert len(np.unique(got)) >= 2

    index = TileIndex.build(resolve_stores([tmp_path / "tiles"]))
    _, hold = index.split_holdout(40, seed=0)
    cfg = PretrainConfig()
    sets = build_knn_sets(cfg, HeldOutTiles(index, hold, TileDataset(index, hold).load_all()))
    cohort = sets["cohort"]
    assert cohort.classes == list(synthetic.CLASS_NAMES)
    assert len(cohort.labels) == len(hold) and set(np.unique(cohort.groups)) <= {0, 1, 2}


def test_tiles_without_a_truth_file_get_no_labels(tmp_path: Path) -> None:
    synthetic.write_slide(tmp_path / "x.tiff", width=256, height=256, levels=1, seed=0)
    path = _store_from_slide(tmp_path / "x.tiff", tmp_path / "tiles")
    synthetic.truth_path_for(tmp_path / "x.tiff").unlink()
    assert CohortLabels().store_labels(TileStore(path), np.arange(3)) is None


def test_labelled_images_from_class_folders_and_from_csv(tmp_path: Path) -> None:
    from PIL import Image

    from wsi_ssl.pretrain.labels import load_labelled_images

    rng = np.random.default_rng(0)
    rows = ["path,label"]
    for cls in ("stroma", "tumor"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "set" / cls / f"{i}.png")
            rows.append(f"set/{cls}/{i}.png,{cls}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    from_dirs = load_labelled_images(tmp_path / "set", size=32, max_tiles=100)
    from_csv = load_labelled_images(tmp_path / "labels.csv", size=32, max_tiles=100)
    for data in (from_dirs, from_csv):
        assert data.classes == ["stroma", "tumor"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
        assert data.images.shape == (6, 3, 32, 32)
    assert torch.equal(from_dirs.images, from_csv.images)
    (tmp_path / "bad.csv").write_text("file,class\nx.png,a\n")
    with pytest.raises(ValueError, match="needs 'path' and 'label' columns"):
        load_labelled_images(tmp_path / "bad.csv", size=32, max_tiles=10)
