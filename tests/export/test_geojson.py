"""``wsi-ssl export-geojson``: QuPath-readable GeoJSON read back with a schema check, coordinates
inside the slide and on the right tiles, MIL measurements equal to the model's own outputs for
classification, regression and survival, and the OME-TIFF overlay on the tile grid."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch

from wsi_ssl.cli import main
from wsi_ssl.mil.config import AggregatorConfig
from wsi_ssl.mil.loading import load_mil_model, save_fold_weights, write_model_json
from wsi_ssl.mil.model import build_model, model_meta
from wsi_ssl.stores.features import write_features
from wsi_ssl.stores.tile_store import TileStore
from wsi_ssl.synthetic import write_slide

DIM = 8


def check_ring(ring: list[list[float]], width: int, height: int) -> None:
    assert len(ring) >= 4 and ring[0] == ring[-1], "a GeoJSON linear ring is closed, with >= 4 positions"
    pts = np.asarray(ring, dtype=np.float64)
    assert pts.shape[1] == 2 and np.isfinite(pts).all()
    assert (pts[:, 0] >= 0).all() and (pts[:, 0] <= width).all() and (pts[:, 1] >= 0).all()
    assert (pts[:, 1] <= height).all()
    x, y = pts[:, 0], pts[:, 1]
    assert abs(0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])) > 0, "rings enclose an area"


def check_collection(doc: dict[str, Any], width: int, height: int) -> list[dict[str, Any]]:
    """The schema QuPath's importer needs (PathObjectTypeAdapters.read): a FeatureCollection of
    Features with a UUID id, a Polygon geometry and properties.objectType; classification a
    {name, color[3]}; measurements a name -> finite number map."""
    assert doc["type"] == "FeatureCollection" and isinstance(doc["features"], list)
    for f in doc["features"]:
        assert f["type"] == "Feature"
        uuid.UUID(f["id"])
        geom, props = f["geometry"], f["properties"]
        assert geom["type"] == "Polygon" and geom["coordinates"]
        for ring in geom["coordinates"]:
            check_ring(ring, width, height)
        assert props["objectType"] in ("annotation", "detection")
        cls = props["classification"]
        assert isinstance(cls["name"], str) and len(cls["color"]) == 3
        for name, value in props.get("measurements", {}).items():
            assert isinstance(name, str) and isinstance(value, float) and np.isfinite(value)
    return list(doc["features"])


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("export")
    write_slide(d / "in" / "pen.tiff", width=2048, height=1536, mpp=0.5, levels=3, seed=3, pen_marks=True)
    tiles = d / "tiles"
    args = ["tile", str(d / "in"), "--out", str(tiles), "--no-progress", "--workers", "1", "--no-qc"]
    assert main([*args, "--tile-size", "128", "--mpp", "1.0"]) == 0
    return tiles


@pytest.fixture(scope="module")
def features(tiled: Path) -> Path:
    """A feature file per slide on the store's coords (all but the last tile, to test matching)."""
    store = TileStore(tiled / "pen.zarr")
    rng = np.random.default_rng(0)
    coords = store.coords[:-1]
    out = tiled.parent / "features"
    attrs = {"slide_id": "pen", "encoder": "test", "mpp": store.mpp, "tile_size": store.tile_size}
    write_features(out / "pen.h5", rng.normal(size=(len(coords), DIM)).astype(np.float32), coords, attrs)
    return out


def mil_run(path: Path, task: str, classes: list[str] | None) -> Path:
    torch.manual_seed(0)
    meta = model_meta(DIM, AggregatorConfig(kind="abmil", hidden_dim=8, attn_dim=4), task, classes, "cox", 0)
    folds = []
    for k in range(2):
        weights = path / "folds" / f"fold_{k}" / "model.safetensors"
        weights.parent.mkdir(parents=True)
        save_fold_weights(build_model(meta), weights)
        folds.append({"index": k, "weights": str(weights.relative_to(path))})
    write_model_json(path, {**meta, "folds": folds})
    return path


def test_tissue_ink_and_tiles_land_where_the_tiler_put_them(tiled: Path, tmp_path: Path) -> None:
    out = tmp_path / "geo"
    assert main(["export-geojson", "--tiles", str(tiled), "--out", str(out)]) == 0
    store = TileStore(tiled / "pen.zarr")
    width, height = store.attrs["slide_dimensions"]
    feats = check_collection(json.loads((out / "pen.geojson").read_text()), width, height)
    detections = [f for f in feats if f["properties"]["objectType"] == "detection"]
    annotations = [f for f in feats if f["properties"]["objectType"] == "annotation"]
    assert len(detections) == len(store)
    extent = store.attrs["read_size"] * store.attrs["downsample"]
    for f, (x, y), t in zip(detections, store.coords, store.tissue):
        ring = np.asarray(f["geometry"]["coordinates"][0])
        assert ring.min(axis=0).tolist() == [x, y] and ring.max(axis=0).tolist() == [x + extent, y + extent]
        assert f["properties"]["measurements"]["tissue_fraction"] == pytest.approx(float(t), abs=1e-6)
    names = {f["properties"]["classification"]["name"] for f in annotations}
    assert names == {"Tissue", "Ink"}
    # The tissue polygons (holes cut out), rasterised, give each tile the tissue fraction the tiler stored.
    import cv2

    k = 8  # level-0 px per raster px
    raster = np.zeros((height // k, width // k), np.uint8)
    for f in annotations:
        if f["properties"]["classification"]["name"] == "Tissue":
            rings = [np.round(np.asarray(r) / k).astype(np.int32) for r in f["geometry"]["coordinates"]]
            cv2.fillPoly(raster, rings, 1)  # even-odd: holes stay empty
    e = int(extent // k)
    fractions = [raster[y // k : y // k + e, x // k : x // k + e].mean() for x, y in store.coords]
    assert np.abs(np.asarray(fractions) - store.tissue).mean() < 0.05


@pytest.mark.parametrize(
    ("task", "classes", "outputs"),
    [
        ("classification", ["neg", "pos"], {"prob neg", "prob pos"}),
        ("regression", None, {"value"}),
        ("survival", None, {"risk"}),
    ],
)
def test_mil_attention_and_tile_predictions_are_measurements(
    tiled: Path, features: Path, tmp_path: Path, task: str, classes: list[str] | None, outputs: set[str]
) -> None:
    run = mil_run(tmp_path / "run", task, classes)
    out = tmp_path / "geo"
    assert (
        main(
            ["export-geojson", "--tiles", str(tiled), "--out", str(out), "--mil", str(run), "--features", str(features)]
        )
        == 0
    )
    store = TileStore(tiled / "pen.zarr")
    width, height = store.attrs["slide_dimensions"]
    feats = check_collection(json.loads((out / "pen.geojson").read_text()), width, height)
    detections = [f["properties"]["measurements"] for f in feats if f["properties"]["objectType"] == "detection"]
    assert set(detections[0]) == {"tissue_fraction", "attention", *outputs}
    assert set(detections[-1]) == {"tissue_fraction"}  # the tile without a feature row has no score
    # Reference: the run's own ensemble on the same features.
    from wsi_ssl.stores.features import read_features

    ensemble, _ = load_mil_model(run)
    ff = read_features(features / "pen.h5")
    attention = ensemble.predict_bag(ff.features)["scores"].numpy()
    got = np.array([d["attention"] for d in detections[:-1]])
    np.testing.assert_allclose(got, attention, rtol=1e-4, atol=1e-6)
    one = ensemble(torch.as_tensor(ff.features[:3]).unsqueeze(1), torch.ones(3, 1, dtype=torch.bool))
    key = "prob" if task == "classification" else ("value" if task == "regression" else "risk")
    ref = one[key].numpy()[:, 1] if key == "prob" else one[key].numpy()
    name = "prob pos" if key == "prob" else key
    np.testing.assert_allclose([d[name] for d in detections[:3]], ref, rtol=1e-4, atol=1e-6)
    # The overlay: one channel per measurement, one pixel per grid cell, the tile's value in its cell.
    with tifffile.TiffFile(out / "pen.scores.ome.tif") as tif:
        assert tif.is_ome and len(tif.series[0].levels) >= 1
        image = tif.series[0].asarray()
        names = tif.ome_metadata
    info = json.loads((out / "export.json").read_text())["slides"][0]
    cell = info["cell_px"]
    assert "attention" in names and image.shape[0] == 2 + len(outputs)
    cx, cy = ((store.coords[0] - [info["origin_x"], info["origin_y"]]) // cell).astype(int)
    assert image[0, cy, cx] == pytest.approx(float(store.tissue[0]), abs=1e-6)
    assert np.isfinite(image[0]).sum() == len(store)
