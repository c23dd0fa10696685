"""A labelled patch set as the evaluation reads it: pixels on demand, labels, splits, sites, MPP.

Every loader (``wsi_ssl.evaluate.datasets.registry``) turns a dataset's published on-disk layout
into one :class:`PatchSet`, so the embedding, the protocols and the robustness checks never know
which dataset they run on. Pixels are read lazily (NCT-CRC-HE-100K alone is 100,000 files), by a
:class:`PatchReader` that either opens image files or slices h5 arrays (PatchCamelyon).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class DatasetError(ValueError):
    """A dataset folder that does not have the layout its ``--dataset`` kind promises."""


class PatchReader(ABC):
    """Reads patch ``i`` as uint8 RGB ``[H, W, 3]``."""

    @abstractmethod
    def read(self, index: int) -> np.ndarray: ...

    @abstractmethod
    def ids(self) -> list[str]:
        """A stable identity per patch (file path relative to the root, or h5 file + row)."""


class FileReader(PatchReader):
    """Image files (tif, png, jpg ...), decoded with Pillow and converted to RGB."""

    def __init__(self, paths: Sequence[Path], root: Path) -> None:
        self.paths, self.root = list(paths), root

    def read(self, index: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.paths[index]) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)

    def ids(self) -> list[str]:
        return [str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p) for p in self.paths]


class H5Reader(PatchReader):
    """Rows of ``[N, H, W, 3]`` uint8 datasets in one or more h5 files, concatenated in order."""

    def __init__(self, parts: Sequence[tuple[Path, str]]) -> None:
        import h5py

        self.parts = list(parts)
        self._sizes = []
        for path, key in self.parts:
            with h5py.File(path, "r") as f:
                self._sizes.append(int(f[key].shape[0]))
        self._starts = np.cumsum([0, *self._sizes])
        self._open: dict[int, object] = {}

    def read(self, index: int) -> np.ndarray:
        import h5py

        part = int(np.searchsorted(self._starts, index, side="right") - 1)
        if part not in self._open:
            path, _ = self.parts[part]
            self._open[part] = h5py.File(path, "r")
        f = self._open[part]
        return np.asarray(f[self.parts[part][1]][index - self._starts[part]], dtype=np.uint8)  # type: ignore[index]

    def ids(self) -> list[str]:
        return [f"{p.name}:{i}" for (p, _), n in zip(self.parts, self._sizes, strict=True) for i in range(n)]

    def __len__(self) -> int:
        return int(self._starts[-1])


@dataclass
class PatchSet:
    """One labelled dataset: ``labels[i]`` indexes ``classes``; ``splits[i]`` is train, val or test."""

    name: str
    mpp: float  # microns per pixel of the patches as stored
    classes: list[str]
    labels: np.ndarray  # int64 [N]
    splits: np.ndarray  # str [N]: "train" / "val" / "test"
    reader: PatchReader
    sites: np.ndarray | None = None  # str [N], where a site (lab, scanner, hospital) is known
    notes: list[str] = field(default_factory=list)  # how splits were made, for results.json

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.splits = np.asarray(self.splits, dtype=object)
        if len(self.labels) != len(self.splits):
            raise DatasetError(f"{self.name}: {len(self.labels)} labels but {len(self.splits)} split entries")
        if self.sites is not None:
            self.sites = np.asarray(self.sites, dtype=object)

    def __len__(self) -> int:
        return len(self.labels)

    def indices(self, split: str) -> np.ndarray:
        return np.nonzero(self.splits == split)[0]

    def fingerprint(self) -> str:
        """sha256 of what the patches are (ids, labels, splits, MPP): the embedding cache's dataset key."""
        h = hashlib.sha256()
        h.update(json.dumps({"name": self.name, "mpp": self.mpp, "classes": self.classes}).encode())
        h.update("\n".join(self.reader.ids()).encode())
        h.update(self.labels.tobytes())
        h.update("\n".join(map(str, self.splits)).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, object]:
        counts = {s: int((self.splits == s).sum()) for s in SPLITS}
        return {
            "name": self.name,
            "mpp": self.mpp,
            "classes": self.classes,
            "patches": counts,
            "sites": sorted(set(map(str, self.sites))) if self.sites is not None else None,
            "notes": self.notes,
        }


def stratified_holdout(labels: np.ndarray, candidates: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A class-stratified ``fraction`` of ``candidates`` (indices), at least one per class with two or more."""
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for c in np.unique(labels[candidates]):
        members = candidates[labels[candidates] == c]
        n = int(round(len(members) * fraction))
        if len(members) >= 2:
            n = min(max(n, 1), len(members) - 1)
        else:
            n = 0
        picked += rng.choice(members, n, replace=False).tolist()
    return np.array(sorted(picked), dtype=np.int64)


def complete_splits(patches: PatchSet, val_fraction: float = 0.1, test_fraction: float = 0.2) -> PatchSet:
    """Give a set without a test or validation split one (class-stratified, seed 0), and say so.

    Early stopping needs a validation split distinct from the test split the figures are scored
    on; datasets published with only train/test (NCT-CRC, MHIST, BACH as eva splits it) get a
    validation split carved out of their training patches, never out of the test patches.
    """
    if not len(patches.indices("test")):
        pool = np.nonzero(patches.splits != "val")[0]
        test = stratified_holdout(patches.labels, pool, test_fraction)
        patches.splits[test] = "test"
        patches.notes.append(f"no test split: {len(test)} patches ({test_fraction:.0%} of train, stratified) held out")
    if not len(patches.indices("val")):
        val = stratified_holdout(patches.labels, patches.indices("train"), val_fraction)
        patches.splits[val] = "val"
        patches.notes.append(
            f"no validation split: {len(val)} training patches ({val_fraction:.0%}, stratified, seed 0) "
            "used for early stopping"
        )
    for s in ("train", "test"):
        if len(np.unique(patches.labels[patches.indices(s)])) < 2:
            raise DatasetError(f"{patches.name}: the {s} split has fewer than two classes")
    return patches


def class_folders(root: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[tuple[Path, str]]:
    """``(file, class)`` for every image in ``root/<CLASS>/``, sorted as torchvision's ImageFolder sorts."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    out: list[tuple[Path, str]] = []
    for cls_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        out += [(f, cls_dir.name) for f in sorted(cls_dir.iterdir()) if f.suffix.lower() in suffixes]
    return out
