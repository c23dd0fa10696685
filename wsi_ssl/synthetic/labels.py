"""The demo cohort as a kNN label provider for pretraining (registered as ``cohort`` in
``wsi_ssl.pretrain.labels``): a held-out tile cut from a generated slide is labelled with the
majority tissue class of its footprint in the slide's truth file. ``monitor.knn.synthetic``
turns it on; stores of other slides (no truth file next to their source) are left unlabelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wsi_ssl.pretrain.labels import TileLabelProvider
from wsi_ssl.synthetic.truth import CLASS_NAMES, tile_labels, truth_path_for

if TYPE_CHECKING:
    from wsi_ssl.pretrain.config import PretrainConfig
    from wsi_ssl.stores.tile_store import TileStore


class CohortLabels(TileLabelProvider):
    """Known tissue classes of tiles from the generated cohort (``CLASS_NAMES``)."""

    description = "held-out cohort tiles"

    @property
    def classes(self) -> list[str]:
        return list(CLASS_NAMES)

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> CohortLabels | None:
        return cls() if cfg.monitor.knn.synthetic else None

    def store_labels(self, store: TileStore, tile_idx: np.ndarray) -> np.ndarray | None:
        attrs = store.attrs
        source = attrs.get("source_path")
        if not source:
            return None
        truth = truth_path_for(Path(source))
        if not truth.exists():
            return None
        # The tile's footprint in level-0 pixels of the slide the truth describes.
        extent = float(attrs["tile_size"]) * float(attrs["mpp"]) / float(attrs["slide_mpp"])
        return np.asarray(tile_labels(truth, store.coords[tile_idx], extent), dtype=np.int64)
