"""Dual-stream MIL (Li, Li & Eliceiri 2021).

Stream 1 scores every instance with the task head and takes the critical (top-scoring) one.
Stream 2 attends from the critical instance's query to every instance:
``a_k = softmax_k(<q_k, q_m> / sqrt(d))`` and pools ``b = sum_k a_k v_k``. The prediction is
the mean of the head on ``b`` and on the critical instance, as in the paper. Here the instance
classifier *is* the task head (one shared head), which makes the model serve regression and
survival heads too; the critical instance is the one with the largest first head output
(largest over classes for multi-class).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from wsi_ssl.mil.aggregators.base import AggOutput, Aggregator, Head, masked_softmax
from wsi_ssl.mil.aggregators.registry import register_aggregator

if TYPE_CHECKING:
    from wsi_ssl.mil.config import AggregatorConfig


class DSMIL(Aggregator):
    def __init__(self, in_dim: int, attn_dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.out_dim = in_dim
        self.q = nn.Sequential(nn.Linear(in_dim, attn_dim), nn.ReLU(), nn.Linear(attn_dim, attn_dim), nn.Tanh())
        self.v = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, in_dim), nn.ReLU())
        self.scale = 1.0 / math.sqrt(attn_dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:
        if head is None:
            raise ValueError("DSMIL needs the task head to score instances")
        inst = head(h)  # [B, N, out]
        score = inst.max(dim=-1).values if inst.shape[-1] > 1 else inst[..., 0]
        score = score.masked_fill(~mask, float("-inf"))
        crit = score.argmax(dim=1)  # [B]
        rows = torch.arange(h.shape[0], device=h.device)
        q = self.q(h)  # [B, N, A]
        q_crit = q[rows, crit]  # [B, A]
        logits = torch.einsum("bna,ba->bn", q, q_crit) * self.scale
        weights = masked_softmax(logits, mask)
        embedding = torch.bmm(weights.unsqueeze(1), self.v(h)).squeeze(1)
        return AggOutput(embedding=embedding, scores=weights, instance_logits=inst[rows, crit])


@register_aggregator("dsmil")
def _build(cfg: AggregatorConfig, in_dim: int) -> Aggregator:
    return DSMIL(in_dim, cfg.attn_dim, dropout=cfg.dropout)
