"""The task head: one linear layer on the bag embedding.

What its outputs mean belongs to the task kind (:mod:`wsi_ssl.mil.tasks`): C logits, one
standardized value, one log relative hazard, or K discrete-time hazard logits; the task's
``predictions`` turns them into what is saved and ensembled (probabilities, values, risks,
survival curves; fold models are averaged in these spaces, never in logit space).
"""

from __future__ import annotations

import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(z))


def discrete_survival(logits: torch.Tensor) -> torch.Tensor:
    """S(t_k) = prod_{j<=k} (1 - h_j) at the end of each bin, with h = sigmoid(logits)."""
    return torch.cumprod(1.0 - torch.sigmoid(logits), dim=-1)
