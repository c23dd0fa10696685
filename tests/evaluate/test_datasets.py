"""Each loader on generated files laid out exactly as the dataset unpacks; NCT on real tiles."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from wsi_ssl.evaluate.datasets import DatasetError, dataset_kinds, load_dataset
from wsi_ssl.evaluate.datasets.public import BACH_CLASSES, BACH_TEST_RANGES, CRC_CLASSES


def test_registry_lists_every_kind() -> None:
    assert dataset_kinds() == ["bach", "crc", "csv", "folder", "mhist", "pcam"]
    with pytest.raises(KeyError, match="unknown dataset kind 'nope'"):
        load_dataset("nope", ".")


def test_crc_layout(tmp_path: Path, write_image: Callable[..., None]) -> None:
    rng = np.random.default_rng(0)
    for folder, n in (("NCT-CRC-HE-100K", 6), ("CRC-VAL-HE-7K", 2)):
        for c in CRC_CLASSES:
            for i in range(n):
                write_image(tmp_path / folder / c / f"{c}-{i:04d}.tif", rng)
    ps = load_dataset("crc", tmp_path)
    assert ps.mpp == 0.5 and ps.classes == CRC_CLASSES
    assert len(ps.indices("test")) == 18  # CRC-VAL-HE-7K is the test split, untouched
    assert len(ps.indices("val")) == 9 and len(ps.indices("train")) == 45  # 10 % of train per class
    assert all("CRC-VAL-HE-7K" in ps.reader.ids()[i] for i in ps.indices("test"))
    assert ps.reader.read(0).shape == (24, 24, 3)
    (tmp_path / "CRC-VAL-HE-7K" / "TUM").rename(tmp_path / "CRC-VAL-HE-7K" / "TUMOUR")
    with pytest.raises(DatasetError, match="unexpected class folders"):
        load_dataset("crc", tmp_path)


def test_crc_on_real_nct_tiles(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "patches" / "nct_crc_he_100k_9samples"
    if not src.is_dir():
        pytest.skip(f"{src} missing")
    for f in sorted(src.glob("*.tif")):
        cls = f.name.split("-")[0]
        for folder in ("NCT-CRC-HE-100K", "CRC-VAL-HE-7K"):
            (tmp_path / folder / cls).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, tmp_path / folder / cls / f.name)
            shutil.copy(f, tmp_path / folder / cls / f"copy-{f.name}")
    ps = load_dataset("crc", tmp_path)
    assert len(ps) == 36
    for i in range(len(ps)):
        img = ps.reader.read(i)
        assert img.shape == (224, 224, 3) and img.dtype == np.uint8
        assert Path(ps.reader.ids()[i]).name.removeprefix("copy-").split("-")[0] == ps.classes[ps.labels[i]]


def test_bach_uses_evas_split(tmp_path: Path, write_image: Callable[..., None]) -> None:
    rng = np.random.default_rng(0)
    photos = tmp_path / "ICIAR2018_BACH_Challenge" / "Photos"
    for c in BACH_CLASSES:  # 100 images per class, as published (400 in all)
        for i in range(100):
            write_image(photos / c / f"{c.lower()}{i + 1:03d}.tif", rng, (8, 8))
    ps = load_dataset("bach", tmp_path)
    expected = np.concatenate([np.arange(lo, hi) for lo, hi in BACH_TEST_RANGES])
    np.testing.assert_array_equal(ps.indices("test"), expected)
    assert len(expected) == 132 and ps.mpp == 0.42
    assert len(ps.indices("train")) + len(ps.indices("val")) == 268


def test_mhist_layout(tmp_path: Path, write_image: Callable[..., None]) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        name = f"MHIST_{i:03d}.png"
        write_image(tmp_path / "images" / name, rng)
        rows.append(
            {
                "Image Name": name,
                "Majority Vote Label": "SSA" if i % 3 else "HP",
                "Number of Annotators who Selected SSA": "4",
                "Partition": "test" if i >= 14 else "train",
            }
        )
    with open(tmp_path / "annotations.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ps = load_dataset("mhist", tmp_path)
    assert ps.classes == ["SSA", "HP"] and ps.mpp == 2.0
    assert len(ps.indices("test")) == 6
    assert ps.labels[0] == 1 and ps.labels[1] == 0


def test_pcam_h5_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("train", 12), ("valid", 4), ("test", 6)):
        with h5py.File(tmp_path / f"camelyonpatch_level_2_split_{name}_x.h5", "w") as f:
            f["x"] = rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8)
        with h5py.File(tmp_path / f"camelyonpatch_level_2_split_{name}_y.h5", "w") as f:
            f["y"] = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1, 1, 1)
    ps = load_dataset("pcam", tmp_path)
    assert [len(ps.indices(s)) for s in ("train", "val", "test")] == [12, 4, 6]
    with h5py.File(tmp_path / "camelyonpatch_level_2_split_test_x.h5", "r") as f:
        np.testing.assert_array_equal(ps.reader.read(12 + 4 + 5), f["x"][5])
    assert ps.labels[17] == 1 and ps.mpp == 0.972


def test_folder_and_csv_need_mpp(tmp_path: Path, write_image: Callable[..., None]) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            for i in range(5):
                write_image(tmp_path / "set" / split / c / f"{i}.png", rng)
    with pytest.raises(DatasetError, match="needs --mpp"):
        load_dataset("folder", tmp_path / "set")
    ps = load_dataset("folder", tmp_path / "set", 0.25)
    assert ps.classes == ["a", "b"] and len(ps.indices("test")) == 10 and len(ps.indices("val")) == 2


def test_csv_with_sites(tmp_path: Path, write_image: Callable[..., None]) -> None:
    rng = np.random.default_rng(0)
    with open(tmp_path / "p.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "site"])
        for i in range(30):
            write_image(tmp_path / f"img{i}.png", rng)
            w.writerow([f"img{i}.png", "x" if i % 2 else "y", f"s{i % 3}"])
    ps = load_dataset("csv", tmp_path / "p.csv", 0.5)
    assert ps.sites is not None and set(ps.sites) == {"s0", "s1", "s2"}
    assert len(ps.indices("test")) == 6  # no split column: 20 % stratified test
    assert any("no test split" in n for n in ps.notes)
