"""Label-free monitoring: RankMe on a fixed held-out sample, and kNN accuracy where labels exist.

RankMe (Garrido et al. 2023) is the effective rank of an embedding matrix: exp of the entropy of
its normalised singular values. A collapsing SSL run shows it falling; a learning run shows it
rising. kNN accuracy (cosine similarity, temperature-weighted votes as in DINO's evaluation) is
computed on the labelled tile sets of ``labels`` (its providers: a folder of class sub-folders or
a CSV (path,label), and the known tissue classes of held-out tiles from the generated cohort).

``monitor.probe`` is the general mechanism: a labelled patch set of any ``wsi-ssl evaluate``
dataset kind, scored with the evaluation's own linear probe and kNN
(``wsi_ssl.evaluate.monitor_probe``) as ``monitor/probe_{linear,knn}_<network>``, so the curve
is the figure ``evaluate`` would report for that checkpoint. The cohort kNN stays as one provider.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsi_ssl.pretrain.labels import LabelledTiles

log = logging.getLogger(__name__)


def rankme(embeddings: torch.Tensor, eps: float = 1e-7) -> float:
    """exp(entropy of p), p_k = sigma_k / sum(sigma) + eps, over the singular values of [N, D]."""
    s = torch.linalg.svdvals(embeddings.double())
    p = s / s.sum() + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def knn_leave_group_out(
    emb: torch.Tensor, labels: torch.Tensor, groups: np.ndarray, k: int = 20, temperature: float = 0.07
) -> float:
    """kNN accuracy where every tile is a query against the tiles of *other* groups (slides).

    Neighbours from the query's own slide are excluded, so adjacent, near-identical tiles of one
    slide cannot vote for each other; using every tile as a query keeps the estimate steady on
    small held-out sets. With one group per tile this is leave-one-out kNN.
    """
    x = F.normalize(emb.float(), dim=-1)
    g = torch.as_tensor(np.asarray(groups))
    sim = x @ x.t()
    sim = sim.masked_fill(g[:, None] == g[None, :], float("-inf"))
    n_other = int((g[:, None] != g[None, :]).sum(1).min())
    k = min(k, n_other)
    if k < 1:
        raise ValueError("kNN needs tiles from at least two groups (slides)")
    top, idx = sim.topk(k, dim=1)
    n_classes = int(labels.max()) + 1
    votes = torch.zeros(x.shape[0], n_classes)
    votes.scatter_add_(1, labels[idx], torch.exp(top / temperature))
    return float((votes.argmax(1) == labels).float().mean())


class Embedder:
    """Embeds uint8 tiles with a backbone at the training resolution, in evaluation mode."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], batch_size: int = 128) -> None:
        self.size, self.mean, self.std, self.batch_size = size, mean, std, batch_size

    @torch.no_grad()
    def __call__(self, backbone: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        from wsi_ssl.pretrain.augment import normalize

        was_training = backbone.training
        backbone.eval()
        out = []
        for i in range(0, len(images), self.batch_size):
            x = images[i : i + self.batch_size].to(device).float() / 255.0
            if x.shape[-1] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
            out.append(backbone(normalize(x, self.mean, self.std)).float().cpu())
        backbone.train(was_training)
        return torch.cat(out)


class MonitorCallback(L.Callback):
    """Logs RankMe (teacher and student) and kNN accuracy at step 0, every N steps and at the end."""

    def __init__(
        self,
        holdout: torch.Tensor,
        embedder: Embedder,
        every: int,
        knn_sets: dict[str, LabelledTiles] | None = None,
        k: int = 20,
    ) -> None:
        self.holdout = holdout
        self.embedder = embedder
        self.every = every
        self.knn_sets = knn_sets or {}
        self.k = k
        self.history: list[dict[str, float]] = []
        self._last_step = -1
        self._probe: Any = None  # wsi_ssl.evaluate.monitor_probe.ProbeSet, read at the first measurement

    def measure(self, module: Any) -> dict[str, float]:
        """All monitor metrics for the module's backbones now (no logging)."""
        device = module.device
        nets: dict[str, nn.Module] = dict(module.monitored_backbones())
        metrics: dict[str, float] = {}
        for name, net in nets.items():
            if len(self.holdout) >= 2:
                metrics[f"monitor/rankme_{name}"] = rankme(self.embedder(net, self.holdout, device))
            for set_name, data in self.knn_sets.items():
                emb = self.embedder(net, data.images, device)
                metrics[f"monitor/knn_{set_name}_{name}"] = knn_leave_group_out(emb, data.labels, data.groups, self.k)
        probe_cfg = getattr(getattr(module, "cfg", None), "monitor", None)
        if probe_cfg is not None and probe_cfg.probe.data:
            from wsi_ssl.evaluate.monitor_probe import load_probe_set, probe_metrics

            if self._probe is None:
                self._probe = load_probe_set(probe_cfg.probe, self.embedder.size, getattr(module, "tile_mpp", None))
            for name, net in nets.items():
                got = probe_metrics(self._probe, functools.partial(self.embedder, net, device=device), probe_cfg.probe)
                for proto, value in got.items():
                    metrics[f"monitor/probe_{proto}_{name}"] = value
        return metrics

    def _run(self, trainer: L.Trainer, module: Any) -> None:
        step = int(trainer.global_step)
        if step == self._last_step:
            return
        self._last_step = step
        metrics = self.measure(module)  # every rank computes (sharded models need all ranks)
        if trainer.is_global_zero:
            self.history.append({"step": float(step), **metrics})
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
            log.info("step %d: %s", step, ", ".join(f"{k.split('/')[-1]}={v:.4g}" for k, v in metrics.items()))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every == 0:
            self._run(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run(trainer, pl_module)
