"""Memory-mapped feature rows give exactly h5py's rows, and only where the file's layout allows."""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np
import pytest
from serve_helpers import make_slide

from wsi_ssl.serve.catalog import Catalog
from wsi_ssl.serve.encoding import tile_records
from wsi_ssl.serve.feature_rows import FeatureRows


def _write(path: Path, feats: np.ndarray, **kwargs: object) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=feats, **kwargs)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    "layout",
    [
        {"chunks": (7, 12)},  # chunks of whole rows, the last one partial
        {},  # contiguous
        {"chunks": (1, 12)},
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float16", "<f8"])
def test_mapped_rows_equal_h5py(tmp_path: Path, layout: dict[str, object], dtype: str) -> None:
    feats = np.random.default_rng(0).normal(size=(45, 12)).astype(dtype)
    path = _write(tmp_path / "f.h5", feats, **layout)
    with h5py.File(path, "r") as f:
        rows = FeatureRows.map(path, f["features"])
        assert rows is not None
        for start, stop in [(0, 45), (3, 4), (6, 8), (7, 14), (13, 44), (44, 45), (10, 10)]:
            np.testing.assert_array_equal(rows.read(start, stop), feats[start:stop])
            out = np.zeros((stop - start, 12 * feats.itemsize + 5), np.uint8)[:, 5:]  # strided, like a page
            rows.copy_into(start, stop, out)
            assert out.tobytes() == feats[start:stop].tobytes()


@pytest.mark.parametrize(
    "layout",
    [
        {"chunks": (8, 12), "compression": "gzip"},  # filtered: bytes on disk are not the rows
        {"chunks": (8, 12), "shuffle": True},
        {"chunks": (8, 6)},  # chunks split a row
        {"dtype": ">f4"},  # big-endian
    ],
)
def test_unmappable_layouts_fall_back(tmp_path: Path, layout: dict[str, object]) -> None:
    feats = np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32)
    path = _write(tmp_path / "f.h5", feats, **layout)
    with h5py.File(path, "r") as f:
        assert FeatureRows.map(path, f["features"]) is None


def test_unwritten_chunks_fall_back(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("features", shape=(20, 4), chunks=(5, 4), dtype="f4")
        ds[:5] = 1.0  # chunks 2-4 never written: h5py reads the fill value
    with h5py.File(path, "r") as f:
        assert FeatureRows.map(path, f["features"]) is None


@pytest.mark.parametrize("mmap_features", [True, False])
def test_pages_are_the_same_with_and_without_mapping(tmp_path: Path, mmap_features: bool) -> None:
    make_slide(tmp_path, "s", 300, seed=5)
    make_slide(tmp_path, "h", 40, seed=6, dtype="float16")
    catalog = Catalog({"c": tmp_path}, mmap_features=mmap_features)
    for slide in ("s", "h"):
        handle = catalog.open("c", slide)
        assert (handle.rows is not None) == mmap_features
        with h5py.File(tmp_path / f"{slide}.h5", "r") as f:
            truth = f["features"][:]
        for start, stop in [(0, handle.n_tiles), (17, 33), (5, 5)]:
            np.testing.assert_array_equal(handle.features(start, stop), truth[start:stop])
            out = np.zeros((stop - start, handle.dim * truth.itemsize), np.uint8)
            handle.copy_features_into(start, stop, out)
            assert out.tobytes() == truth[start:stop].tobytes()
        page = tile_records(handle.coords[:9], truth[:9])
        assert np.load(io.BytesIO(bytes(page)))["features"].tobytes() == truth[:9].tobytes()
