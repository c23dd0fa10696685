"""The evaluation's linear probe and kNN inside pretraining (``monitor.probe``).

``monitor.probe.data`` names a labelled patch set of any ``wsi-ssl evaluate --dataset`` kind (a
folder of class sub-folders by default). It is read once, each patch brought to the training
tiles' scale and size by the same rule as ``evaluate`` (``wsi_ssl.evaluate.pixels``), and every
``val_every`` steps the backbones' embeddings of it are scored with the same protocol code
(``run_protocols``): the linear probe (eva's schedule, capped at ``linear_max_steps``) and kNN,
balanced accuracy on its test split. So the curve a run logs is the figure ``evaluate`` would give
for that checkpoint, on labelled data from anywhere, not only on the generated cohort.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from wsi_ssl.evaluate.datasets import load_dataset
from wsi_ssl.evaluate.pixels import to_encoder_pixels
from wsi_ssl.evaluate.protocols.linear import LinearSchedule
from wsi_ssl.evaluate.protocols.suite import Embeddings, run_protocols
from wsi_ssl.evaluate.runner import capped_indices

if TYPE_CHECKING:
    from wsi_ssl.pretrain.config import ProbeConfig

log = logging.getLogger(__name__)


@dataclass
class ProbeSet:
    """Patches at the training tile size (uint8 [N, 3, T, T]) with labels and their split."""

    name: str
    images: torch.Tensor
    labels: np.ndarray
    splits: np.ndarray
    n_classes: int


def load_probe_set(cfg: ProbeConfig, tile_size: int, tile_mpp: float | None) -> ProbeSet:
    if not cfg.data:
        raise ValueError("monitor.probe.data is not set")
    patches = load_dataset(cfg.dataset, cfg.data, cfg.mpp)
    test = capped_indices(patches, ("test",), cfg.max_patches // 3)
    trval = capped_indices(patches, ("train", "val"), cfg.max_patches - len(test))
    index = np.sort(np.concatenate([trval, test]))
    pixels = [to_encoder_pixels(patches.reader.read(int(i)), patches.mpp, tile_mpp, tile_size) for i in index]
    images = torch.from_numpy(np.stack([_square(p, tile_size) for p in pixels])).permute(0, 3, 1, 2).contiguous()
    log.info(
        "probe on %s (%s): %d patches at %d px, %s", cfg.data, cfg.dataset, len(index), tile_size,
        {s: int((patches.splits[index] == s).sum()) for s in ("train", "val", "test")},
    )  # fmt: skip
    return ProbeSet(patches.name, images, patches.labels[index], patches.splits[index], len(patches.classes))


def _square(patch: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return patch if patch.shape[:2] == (size, size) else cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


def probe_metrics(probe: ProbeSet, embed: Callable[[torch.Tensor], torch.Tensor], cfg: ProbeConfig) -> dict[str, float]:
    """``{"linear": balanced accuracy, "knn": ...}`` of one backbone (mean over ``cfg.seeds``)."""
    x = embed(probe.images).float().numpy()
    parts = {s: probe.splits == s for s in ("train", "val", "test")}
    emb = Embeddings(
        x[parts["train"]], probe.labels[parts["train"]], x[parts["val"]], probe.labels[parts["val"]],
        x[parts["test"]], probe.labels[parts["test"]], probe.n_classes,
    )  # fmt: skip
    schedule = LinearSchedule(max_steps=cfg.linear_max_steps)
    r = run_protocols(emb, cfg.seeds, ("linear", "knn"), schedule, cfg.k)
    return {name: r.protocols[name]["metrics"]["balanced_accuracy"]["mean"] for name in ("linear", "knn")}
