"""The one interface every fusion kind implements.

A fusion sees the projected tiles ``h`` [B, N, H] with their ``mask`` and the encoded side inputs
(:class:`~wsi_ssl.mil.clinical.encoder.SideInputs`) twice: ``instances`` may change the tiles
before the aggregator pools them (FiLM, cross-attention: the attention heatmaps then come from
the fused model's tile attention), and ``bag`` may change the pooled embedding the head reads
(late fusion). Padding must not change a bag's output, as for aggregators.
"""

from __future__ import annotations

import torch
from torch import nn

from wsi_ssl.mil.clinical.encoder import SideInputs


class Fusion(nn.Module):
    """Base class: identity on both sides. ``out_dim(e)`` is the width the head reads."""

    uses_side: bool = False

    def out_dim(self, embedding_dim: int) -> int:
        return embedding_dim

    def instances(
        self, h: torch.Tensor, mask: torch.Tensor, side: SideInputs | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tiles the aggregator pools, and anything ``bag`` needs from this step (or None)."""
        return h, None

    def bag(self, embedding: torch.Tensor, side: SideInputs | None, context: torch.Tensor | None) -> torch.Tensor:
        """The embedding the head reads, from the pooled one and ``instances``' context."""
        return embedding


def side_mlp(in_dim: int, hidden: int, dropout: float) -> nn.Module:
    """The small covariate/omics encoder the kinds share."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
