"""Mean pooling: the baseline every attention model should beat (and, with no projection and a
Cox head, exactly a linear Cox model, which the GBSG2 quality bar uses)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from wsi_ssl.mil.aggregators.base import AggOutput, Aggregator, Head, masked_mean
from wsi_ssl.mil.aggregators.registry import register_aggregator

if TYPE_CHECKING:
    from wsi_ssl.mil.config import AggregatorConfig


class MeanPool(Aggregator):
    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim

    def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:
        weights = mask.to(h.dtype) / mask.sum(dim=1, keepdim=True).clamp(min=1).to(h.dtype)
        return AggOutput(embedding=masked_mean(h, mask), scores=weights)


@register_aggregator("mean", attention=False)  # uniform scores: no heatmaps
def _build(cfg: AggregatorConfig, in_dim: int) -> Aggregator:
    return MeanPool(in_dim)
