"""KoLeo regulariser (Sablayrolles et al. 2019, used by DINOv2).

It maximises the log distance of each embedding to its nearest neighbour in the batch, which
spreads the features uniformly on the sphere and counters dimensional collapse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``-mean(log(d_nn))`` over a batch ``x`` [B, D] of embeddings (L2-normalised here)."""
    if x.shape[0] < 2:
        return x.new_zeros(())
    x = F.normalize(x.float(), dim=-1, eps=eps)
    with torch.no_grad():
        sim = x @ x.t()
        sim.fill_diagonal_(-2.0)
        nn_idx = sim.argmax(dim=1)
    dist = F.pairwise_distance(x, x[nn_idx], eps=eps)
    return -torch.log(dist + eps).mean()
