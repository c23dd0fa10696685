"""A user's own labelled patches: class folders (``folder``) or a table (``csv``).

Neither layout records a magnification, so ``--mpp`` is required: without it patches could not
be brought to the encoder's scale, the step that matters most for a fair comparison.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from wsi_ssl.evaluate.datasets.base import SPLITS, DatasetError, FileReader, PatchSet, class_folders, complete_splits
from wsi_ssl.evaluate.datasets.registry import register_dataset

SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _require_mpp(kind: str, mpp: float | None) -> float:
    if not mpp or mpp <= 0:
        raise DatasetError(f"--dataset {kind} needs --mpp (microns per pixel of the patches): the layout does not say")
    return float(mpp)


@register_dataset("folder")
def load_folder(root: Path, mpp: float | None) -> PatchSet:
    """``root/<CLASS>/*`` or ``root/{train,val,test}/<CLASS>/*`` (val and test optional)."""
    split_dirs = {SPLIT_ALIASES[p.name]: p for p in root.iterdir() if p.is_dir() and p.name in SPLIT_ALIASES}
    if split_dirs and "train" not in split_dirs:
        raise DatasetError(f"folder: {root} has {sorted(split_dirs)} folders but no train/")
    found = (
        [(p, c, s) for s, d in split_dirs.items() for p, c in class_folders(d)]
        if split_dirs
        else [(p, c, "train") for p, c in class_folders(root)]
    )
    if not found:
        raise DatasetError(f"folder: no images in class sub-folders of {root}")
    classes = sorted({c for _, c, _ in found})
    patches = PatchSet(
        root.name or "folder",
        _require_mpp("folder", mpp),
        classes,
        np.array([classes.index(c) for _, c, _ in found]),
        np.array([s for _, _, s in found]),
        FileReader([p for p, _, _ in found], root),
    )
    return complete_splits(patches)


@register_dataset("csv")
def load_csv(root: Path, mpp: float | None) -> PatchSet:
    """A CSV ``path,label[,split][,site]``; relative paths are relative to the CSV's folder."""
    table = root if root.is_file() else root / "patches.csv"
    if not table.is_file():
        raise DatasetError(f"csv: {table} not found (give the CSV itself, or a folder with patches.csv)")
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or [])
        if not {"path", "label"} <= fields:
            raise DatasetError(f"csv: {table} needs columns path,label[,split][,site]; has {reader.fieldnames}")
        rows = list(reader)
    if not rows:
        raise DatasetError(f"csv: {table} has no rows")
    paths = [Path(r["path"]) if Path(r["path"]).is_absolute() else table.parent / r["path"] for r in rows]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"csv: {len(missing)} listed images are missing, e.g. {missing[0]}")
    splits = ["train"] * len(rows)
    if "split" in fields:
        bad = sorted({r["split"] for r in rows} - set(SPLIT_ALIASES))
        if bad:
            raise DatasetError(f"csv: unknown split values {bad}; use one of {', '.join(SPLITS)}")
        splits = [SPLIT_ALIASES[r["split"]] for r in rows]
    classes = sorted({r["label"] for r in rows})
    patches = PatchSet(
        table.stem,
        _require_mpp("csv", mpp),
        classes,
        np.array([classes.index(r["label"]) for r in rows]),
        np.array(splits),
        FileReader(paths, table.parent),
        sites=np.array([r["site"] for r in rows]) if "site" in fields else None,
    )
    return complete_splits(patches)
