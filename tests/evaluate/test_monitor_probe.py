"""``monitor.probe``: pretraining's monitor scores a labelled patch set with evaluate's own code."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from wsi_ssl.evaluate.datasets import load_dataset
from wsi_ssl.evaluate.monitor_probe import load_probe_set
from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.monitor import Embedder, MonitorCallback


class MeanColour(nn.Module):
    """A 'backbone' whose embedding is the mean colour and its spread: enough to tell tissue apart."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)


def test_probe_metrics_in_the_monitor(demo_patches: Path) -> None:
    cfg = PretrainConfig.model_validate(
        {"monitor": {"probe": {"data": str(demo_patches), "dataset": "csv", "mpp": 1.0, "linear_max_steps": 3000}}}
    )
    module = SimpleNamespace(
        cfg=cfg, tile_mpp=1.0, device=torch.device("cpu"), monitored_backbones=lambda: [("teacher", MeanColour())]
    )
    monitor = MonitorCallback(torch.empty(0), Embedder(32, cfg.augment.mean, cfg.augment.std), every=10)
    metrics = monitor.measure(module)
    assert set(metrics) == {"monitor/probe_linear_teacher", "monitor/probe_knn_teacher"}
    assert all(0.2 < v <= 1.0 for v in metrics.values()), metrics  # 5 classes: chance is 0.2
    # the same patches, at the training tile size, with the dataset's own labels and splits
    probe = monitor._probe
    patches = load_dataset("csv", demo_patches, 1.0)
    assert probe.images.shape[1:] == (3, 32, 32) and len(probe.labels) == len(patches)
    assert np.bincount(probe.labels).tolist() == np.bincount(patches.labels).tolist()


def test_probe_set_rescales_to_the_tile_mpp(demo_patches: Path) -> None:
    cfg = PretrainConfig.model_validate(
        {"monitor": {"probe": {"data": str(demo_patches), "dataset": "csv", "mpp": 1.0}}}
    )
    # patches of 32 px at 1.0 um/px seen by tiles of 16 px at 2.0 um/px: the whole patch, shrunk
    probe = load_probe_set(cfg.monitor.probe, 16, 2.0)
    assert probe.images.shape[1:] == (3, 16, 16)
    with pytest.raises(ValueError, match="needs --mpp"):
        load_probe_set(cfg.monitor.probe.model_copy(update={"mpp": None}), 16, 2.0)
