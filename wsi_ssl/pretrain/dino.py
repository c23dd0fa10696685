"""DINO's self-distillation loss with teacher centring and sharpening (Caron et al. 2021).

The teacher's output is centred (a running mean subtracted, which prevents one prototype from
winning) and sharpened by a low temperature; each student view is trained to predict the teacher
distribution of every *other* global view. tests/pretrain/reference_dino.py holds the authors'
double-loop loss (a verbatim copy) that this one is tested against.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over ranks when running distributed (centre updates must agree across ranks)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        x = x.clone()
        dist.all_reduce(x)
        x = x / dist.get_world_size()
    return x


class DINOLoss(nn.Module):
    """Cross-entropy between sharpened, centred teacher and student distributions over views."""

    center: torch.Tensor  # a buffer (registered in __init__), declared for type checkers

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_probs(self, teacher_logits: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        return F.softmax((teacher_logits.float() - self.center) / teacher_temp, dim=-1)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, n_global: int, teacher_temp: float
    ) -> torch.Tensor:
        """``student_logits``: [V*B, K] view-major, globals first; ``teacher_logits``: [G*B, K].

        Returns the mean over pairs (teacher view g, student view v != g) of the per-sample
        cross-entropy. The sum over all pairs factorises as (sum_g q_g) . (sum_v log p_v) minus the
        same-view terms, so the cost is linear in the number of views, not quadratic.
        """
        b = teacher_logits.shape[0] // n_global
        n_views = student_logits.shape[0] // b
        q = self.teacher_probs(teacher_logits, teacher_temp).view(n_global, b, -1)
        logp = F.log_softmax(student_logits.float() / self.student_temp, dim=-1).view(n_views, b, -1)
        total = (q.sum(0) * logp.sum(0)).sum(-1)  # [B]
        same = (q * logp[:n_global]).sum(-1).sum(0)  # [B]
        n_pairs = n_global * n_views - min(n_global, n_views)
        loss = -(total - same).mean() / n_pairs
        self.update_center(teacher_logits)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_logits: torch.Tensor) -> None:
        batch_center = all_reduce_mean(teacher_logits.float().mean(0, keepdim=True))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
