"""The one interface every MIL aggregator implements.

``forward(h, mask, head)`` takes projected instances ``h`` [B, N, H] and a boolean ``mask``
[B, N] (True = real instance, False = padding) and returns an :class:`AggOutput`. Padding must
not change the result: a bag padded with any number of extra masked rows gives the same output.
``head`` is passed for aggregators that score single instances (DSMIL's critical instance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class AggOutput:
    embedding: torch.Tensor  # [B, E] the bag representation the head reads
    scores: torch.Tensor | None = None  # [B, N] per-instance weights (0 on padding), for heatmaps
    instance_logits: torch.Tensor | None = None  # [B, out] head output on a critical instance (DSMIL)


Head = Callable[[torch.Tensor], torch.Tensor]


class Aggregator(nn.Module):
    """Base class: subclasses set ``out_dim`` and implement ``forward``."""

    out_dim: int

    def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:  # pragma: no cover
        raise NotImplementedError


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over real instances only: padded positions get exactly zero weight."""
    logits = logits.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(logits, dim=dim)
    return torch.nan_to_num(weights, nan=0.0)  # an all-padding row (never in practice) -> zeros


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def check_attention_widths(cfg: Any) -> None:
    """Config check shared by the self-attention kinds: a projection whose width splits into heads."""
    if cfg.hidden_dim == 0:
        raise ValueError(f"aggregator.hidden_dim must be > 0 for {cfg.kind} (attention needs a projection)")
    if cfg.hidden_dim % cfg.n_heads:
        raise ValueError(f"aggregator.hidden_dim must be divisible by aggregator.n_heads for {cfg.kind}")
