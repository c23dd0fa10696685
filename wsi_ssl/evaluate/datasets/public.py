"""The public benchmarks, read as their archives unpack, with the splits kaiko-ai/eva uses.

Sources (kaiko-ai/eva: ``src/eva/vision/data/datasets/classification/{crc,bach,mhist,patch_camelyon}.py``,
``configs/vision/pathology/offline/classification/*.yaml`` and ``docs/datasets/index.md``):

- ``crc``: NCT-CRC-HE-100K (train) and CRC-VAL-HE-7K (test), 224 px at 0.5 um/px, nine classes
  ADI BACK DEB LYM MUC MUS NORM STR TUM (Kather et al. 2019, zenodo 1214456). eva early-stops on
  CRC-VAL-HE-7K itself; we keep it as the untouched test split and early-stop on 10 % of the
  training patches instead.
- ``bach``: ``ICIAR2018_BACH_Challenge/Photos/<Class>/*.tif``, 2048 x 1536 px at 0.42 um/px (the
  challenge's stated pixel scale; eva's table rounds it to 0.5). The official test images are
  unlabelled, so eva's patient-disjoint split of the 400 labelled images is used: eva's ``val``
  index ranges over the ImageFolder-sorted files are our test split.
- ``mhist``: ``annotations.csv`` (``Image Name``, ``Majority Vote Label``, ``Partition``) and
  ``images/``; 224 px, 2.0 um/px (5x, downsampled from 40x, per eva); its own train/test partition.
- ``pcam``: ``camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5`` (datasets ``x`` [N,96,96,3]
  and ``y`` [N,1,1,1]); 96 px at 10x, 0.972 um/px (0.243 um/px downsampled 4x; eva: "10x (1.0)").
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from wsi_ssl.evaluate.datasets.base import DatasetError, FileReader, H5Reader, PatchSet, class_folders, complete_splits
from wsi_ssl.evaluate.datasets.registry import register_dataset

CRC_CLASSES = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
CRC_TRAIN, CRC_TEST = "NCT-CRC-HE-100K", "CRC-VAL-HE-7K"
BACH_CLASSES = ["Benign", "InSitu", "Invasive", "Normal"]
# eva's Bach.val_index_ranges (patient-disjoint), half-open, over the 400 sorted labelled images.
BACH_TEST_RANGES = [(41, 59), (60, 90), (139, 169), (240, 258), (260, 273), (345, 368)]
MHIST_CLASSES = ["SSA", "HP"]
PCAM_SPLITS = {"train": "train", "valid": "val", "test": "test"}

MPP = {"crc": 0.5, "bach": 0.42, "mhist": 2.0, "pcam": 0.972}


def _mpp(kind: str, override: float | None) -> float:
    return float(override) if override else MPP[kind]


@register_dataset("crc")
def load_crc(root: Path, mpp: float | None) -> PatchSet:
    """``root/NCT-CRC-HE-100K/<CLASS>/*.tif`` and ``root/CRC-VAL-HE-7K/<CLASS>/*.tif``."""
    parts = {}
    for folder, split in ((CRC_TRAIN, "train"), (CRC_TEST, "test")):
        if not (root / folder).is_dir():
            raise DatasetError(f"crc: {root / folder} missing; expected DIR/{CRC_TRAIN}/<CLASS>/ and DIR/{CRC_TEST}/")
        parts[split] = class_folders(root / folder)
    items = [(p, c, s) for s, found in parts.items() for p, c in found]
    unknown = sorted({c for _, c, _ in items} - set(CRC_CLASSES))
    if unknown:
        raise DatasetError(f"crc: unexpected class folders {unknown}; NCT-CRC-HE classes are {CRC_CLASSES}")
    patches = PatchSet(
        "crc",
        _mpp("crc", mpp),
        list(CRC_CLASSES),
        np.array([CRC_CLASSES.index(c) for _, c, _ in items]),
        np.array([s for _, _, s in items]),
        FileReader([p for p, _, _ in items], root),
    )
    return complete_splits(patches)


@register_dataset("bach")
def load_bach(root: Path, mpp: float | None) -> PatchSet:
    """``root/ICIAR2018_BACH_Challenge/Photos/<Class>/*.tif`` (or ``root`` is the Photos folder)."""
    photos = root / "ICIAR2018_BACH_Challenge" / "Photos"
    photos = photos if photos.is_dir() else root
    items = [(p, c) for p, c in class_folders(photos, (".tif",)) if c in BACH_CLASSES]
    if not items:
        raise DatasetError(f"bach: no {'/'.join(BACH_CLASSES)} class folders of .tif images under {photos}")
    test = np.zeros(len(items), dtype=bool)
    for lo, hi in BACH_TEST_RANGES:
        test[lo : min(hi, len(items))] = True
    patches = PatchSet(
        "bach",
        _mpp("bach", mpp),
        list(BACH_CLASSES),
        np.array([BACH_CLASSES.index(c) for _, c in items]),
        np.where(test, "test", "train"),
        FileReader([p for p, _ in items], root),
    )
    if len(items) != 400:
        patches.notes.append(f"bach: {len(items)} images, not the published 400; eva's index ranges applied anyway")
    return complete_splits(patches)


@register_dataset("mhist")
def load_mhist(root: Path, mpp: float | None) -> PatchSet:
    """``root/annotations.csv`` + ``root/images/``; ``Partition`` is train or test."""
    table = root / "annotations.csv"
    if not table.is_file():
        raise DatasetError(f"mhist: {table} missing")
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"Image Name", "Majority Vote Label", "Partition"}
        if not need <= set(reader.fieldnames or []):
            raise DatasetError(f"mhist: {table} needs columns {sorted(need)}, has {reader.fieldnames}")
        rows = list(reader)
    paths = [root / "images" / r["Image Name"] for r in rows]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"mhist: {len(missing)} images listed in annotations.csv are missing, e.g. {missing[0]}")
    bad = sorted({r["Majority Vote Label"] for r in rows} - set(MHIST_CLASSES))
    if bad:
        raise DatasetError(f"mhist: unknown labels {bad}; MHIST labels are {MHIST_CLASSES}")
    patches = PatchSet(
        "mhist",
        _mpp("mhist", mpp),
        list(MHIST_CLASSES),
        np.array([MHIST_CLASSES.index(r["Majority Vote Label"]) for r in rows]),
        np.array([r["Partition"].strip().lower() for r in rows]),
        FileReader(paths, root),
    )
    return complete_splits(patches)


@register_dataset("pcam")
def load_pcam(root: Path, mpp: float | None) -> PatchSet:
    """``root/camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5``."""
    import h5py

    parts: list[tuple[Path, str]] = []
    labels: list[np.ndarray] = []
    splits: list[np.ndarray] = []
    for name, split in PCAM_SPLITS.items():
        x = root / f"camelyonpatch_level_2_split_{name}_x.h5"
        y = root / f"camelyonpatch_level_2_split_{name}_y.h5"
        if not (x.is_file() and y.is_file()):
            continue
        with h5py.File(y, "r") as f:
            lab = np.asarray(f["y"]).reshape(-1).astype(np.int64)
        parts.append((x, "x"))
        labels.append(lab)
        splits.append(np.full(len(lab), split, dtype=object))
    if not parts:
        raise DatasetError(f"pcam: no camelyonpatch_level_2_split_*_{{x,y}}.h5 files in {root}")
    reader = H5Reader(parts)
    if len(reader) != sum(len(lab) for lab in labels):
        raise DatasetError("pcam: the x and y files hold different numbers of patches")
    patches = PatchSet(
        "pcam", _mpp("pcam", mpp), ["no_tumor", "tumor"], np.concatenate(labels), np.concatenate(splits), reader
    )
    return complete_splits(patches)
