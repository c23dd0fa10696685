"""Labelled tiles for the kNN monitor: the :class:`LabelProvider` interface and its registry.

The monitor scores each backbone by leave-one-slide-out kNN accuracy on labelled tiles. Where the
labels come from is a provider's business, so pretraining knows no data set by name. Each
provider that the config turns on yields one labelled set, named by the provider's registry
name in the metrics (``monitor/knn_<name>_<network>``):

- ``labels``: :class:`ImageFolderLabels`, the images of ``monitor.knn.labels`` (a folder of class
  sub-folders, or a CSV with ``path,label`` columns), each image its own group;
- ``cohort``: ``wsi_ssl.synthetic.labels.CohortLabels``, the tissue classes of the held-out tiles
  cut from the generated demo cohort (``monitor.knn.synthetic``), read from each slide's truth file.

A provider that labels the run's own held-out tiles subclasses :class:`TileLabelProvider` and
answers one question: given a tile store and tile numbers in it, their class ids, or None when it
knows nothing of that store. Adding a provider is that class (with ``from_config`` saying when the
config turns it on), one entry in ``_BUILT_IN`` (or :func:`register_label_provider`), and a test.
"""

from __future__ import annotations

import csv
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from wsi_ssl.pretrain.lazy_registry import LazyRegistry

if TYPE_CHECKING:
    from wsi_ssl.pretrain.config import PretrainConfig
    from wsi_ssl.pretrain.data import TileIndex
    from wsi_ssl.stores.tile_store import TileStore

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class LabelledTiles:
    """Images uint8 [N, 3, T, T], integer labels, class names and a group per tile (its slide)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    groups: np.ndarray


@dataclass
class HeldOutTiles:
    """The tiles kept out of training (the monitor's fixed sample) and where each comes from."""

    index: TileIndex
    positions: np.ndarray  # positions in ``index`` of the held-out tiles
    images: torch.Tensor  # their pixels, uint8 [N, 3, T, T], in the order of ``positions``


class LabelProvider(ABC):
    """A source of one labelled tile set for the kNN monitor."""

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: PretrainConfig) -> LabelProvider | None:
        """The provider the config asks for, or None when it does not turn this one on."""

    @abstractmethod
    def knn_set(self, held_out: HeldOutTiles) -> LabelledTiles | None:
        """The labelled tiles to score, or None when there are too few to score."""


class TileLabelProvider(LabelProvider):
    """Labels the run's held-out tiles themselves, one tile store at a time.

    A set is kept when at least ``min_tiles`` held-out tiles have a label and they span two
    classes or more; tiles are grouped by store, so kNN never lets a slide vote for itself.
    """

    description = "held-out tiles"  # for the log line
    min_tiles = 10

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """Class names; the class ids that ``store_labels`` returns index this list."""

    @abstractmethod
    def store_labels(self, store: TileStore, tile_idx: np.ndarray) -> np.ndarray | None:
        """Class ids (int64, -1 for unknown) of tiles ``tile_idx`` of ``store``, or None when this
        provider knows nothing of the store."""

    def knn_set(self, held_out: HeldOutTiles) -> LabelledTiles | None:
        from wsi_ssl.stores.tile_store import TileStore

        index, pos = held_out.index, held_out.positions
        if not len(pos):
            return None
        labels = np.full(len(pos), -1, dtype=np.int64)
        st, ti = index.store_idx[pos], index.tile_idx[pos]
        for s in np.unique(st):
            sel = np.nonzero(st == s)[0]
            got = self.store_labels(TileStore(index.paths[int(s)]), ti[sel])
            if got is not None:
                labels[sel] = got
        ok = labels >= 0
        if ok.sum() < self.min_tiles or len(np.unique(labels[ok])) < 2:
            return None
        names = list(self.classes)
        log.info(
            "kNN on %d %s with known classes (%s)",
            int(ok.sum()),
            self.description,
            ", ".join(f"{names[c]}={int((labels == c).sum())}" for c in np.unique(labels[ok])),
        )
        return LabelledTiles(held_out.images[torch.from_numpy(ok)], torch.from_numpy(labels[ok]), names, st[ok])


class ImageFolderLabels(LabelProvider):
    """``monitor.knn.labels``: labelled images from outside the run, resized to the tile size."""

    def __init__(self, source: str | Path, max_tiles: int, seed: int = 0) -> None:
        self.source, self.max_tiles, self.seed = source, max_tiles, seed

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> ImageFolderLabels | None:
        k = cfg.monitor.knn
        return cls(k.labels, k.max_tiles, cfg.data.seed) if k.labels else None

    def knn_set(self, held_out: HeldOutTiles) -> LabelledTiles:
        return load_labelled_images(self.source, held_out.index.tile_size, self.max_tiles, self.seed)


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def load_labelled_images(source: str | Path, size: int, max_tiles: int, seed: int = 0) -> LabelledTiles:
    """Images from a folder of class sub-folders or a CSV with ``path,label`` columns (relative to it)."""
    src = Path(source)
    items: list[tuple[Path, str]] = []
    if src.is_dir():
        for cls_dir in sorted(p for p in src.iterdir() if p.is_dir()):
            items += [(f, cls_dir.name) for f in sorted(cls_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    elif src.is_file() and src.suffix.lower() == ".csv":
        with open(src, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                raise ValueError(f"monitor.knn.labels: {src} needs 'path' and 'label' columns, has {reader.fieldnames}")
            items = [((src.parent / row["path"]), row["label"]) for row in reader]
    else:
        raise ValueError(f"monitor.knn.labels: {src} is neither a folder of class sub-folders nor a .csv file")
    if len(items) < 2:
        raise ValueError(f"monitor.knn.labels: {src} has fewer than 2 labelled images")
    if len(items) > max_tiles:
        keep = np.random.default_rng(seed).choice(len(items), max_tiles, replace=False)
        items = [items[i] for i in sorted(keep)]
    classes = sorted({lab for _, lab in items})
    images = np.stack([_read_image(p, size) for p, _ in items])
    labels = torch.tensor([classes.index(lab) for _, lab in items])
    return LabelledTiles(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels, classes, np.arange(len(items))
    )


_BUILT_IN = {
    "labels": "wsi_ssl.pretrain.labels:ImageFolderLabels",
    "cohort": "wsi_ssl.synthetic.labels:CohortLabels",
}

LABEL_PROVIDERS: LazyRegistry[type[LabelProvider]] = LazyRegistry("kNN label provider", _BUILT_IN)


def register_label_provider(name: str, target: str) -> None:
    """Add a provider (``"package.module:Class"``); its set is named ``name`` in the metrics."""
    LABEL_PROVIDERS.register(name, target)


def build_knn_sets(cfg: PretrainConfig, held_out: HeldOutTiles) -> dict[str, LabelledTiles]:
    """One labelled set per provider that the config turns on and that has enough to score."""
    sets: dict[str, LabelledTiles] = {}
    for name in LABEL_PROVIDERS.names():
        provider = LABEL_PROVIDERS.get(name).from_config(cfg)
        found = provider.knn_set(held_out) if provider is not None else None
        if found is not None:
            sets[name] = found
    return sets
