"""Task heads and the conversion of raw head outputs into predictions.

One linear head per task; what its outputs mean differs:
- classification: C logits (binary is C=2, so one code path serves both);
- regression: one value in standardized units (the model un-standardizes with training-fold stats);
- survival, Cox: one log relative hazard (the risk);
- survival, discrete-time: K logits of the hazard in each time bin.
``predictions`` turns outputs into what is saved and ensembled: probabilities, values, risks, or
survival curves (fold models are averaged in these spaces, never in logit space).
"""

from __future__ import annotations

import torch
from torch import nn


def head_out_dim(task: str, n_classes: int = 2, survival_loss: str = "cox", n_bins: int = 4) -> int:
    if task == "classification":
        return n_classes
    if task == "survival" and survival_loss == "discrete":
        return n_bins
    return 1


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


def predictions(task: str, survival_loss: str, out: torch.Tensor, target_mean: float = 0.0, target_std: float = 1.0) -> dict[str, torch.Tensor]:
    """Head outputs -> named predictions; every entry can be averaged across fold models."""
    if task == "classification":
        return {"prob": torch.softmax(out, dim=-1)}
    if task == "regression":
        return {"value": out[..., 0] * target_std + target_mean}
    if survival_loss == "discrete":
        surv = discrete_survival(out)
        return {"survival": surv, "risk": -surv.sum(dim=-1)}
    return {"risk": out[..., 0]}
