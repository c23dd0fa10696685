"""``transmil``: TransMIL as published (Shao et al., NeurIPS 2021), batched without changing it.

The authors' model (github.com/szc19990412/TransMIL, ``models/TransMIL.py``): the projected
instances are padded to a square by repeating the first ones (N -> ceil(sqrt(N))^2), a class token
is prepended, then TransLayer -> PPEG -> TransLayer, and the layer-normed class token is the bag
embedding (our ``MILModel`` supplies their ``_fc1`` projection and ``_fc2`` head). A TransLayer is
``x + NystromAttention(LayerNorm(x))`` with lucidrains' ``nystrom-attention`` settings they use:
``dim // n_heads`` per head (they use 8 heads; here ``aggregator.n_heads``), ``dim // 2``
landmarks, 6 Moore-Penrose iterations, the 33-tap depthwise residual conv over the values, and
dropout on the output projection (``aggregator.dropout``; they use 0.1). PPEG adds depthwise 7x7,
5x5 and 3x3 convolutions of the tokens laid out row by row on the ceil(sqrt(N)) square.

Why the attention is written here rather than imported from ``nystrom-attention``: the authors run
one bag at a time, and the package, given a padded batch, is not padding-invariant. It cuts every
sequence of the batch into landmark segments by the *batch's* padded length, and scales the
pseudo-inverse's starting point by a maximum over the whole batch, so a bag's output would depend
on its batch mates. :class:`NystromAttention` below computes, for every bag of a padded batch,
exactly what the package computes (``mask=None``) for that bag alone, as TransMIL calls it: the
bag's own sequence is front-padded with zero tokens to a multiple of the landmark count (those
zero keys keep their softmax weight in the landmark-to-token attention, as there), landmarks are
segment means over that bag's own segments, and the Newton-Schulz start is scaled per bag.
Batch padding (and the 2-D grid padding of PPEG) is masked out and cannot change a bag's result;
bag by bag, the only differences are float rounding. ``tests/mil/test_transmil.py`` checks the
layer against a one-sequence reference and, where the package is installed, against the package.

Instance scores (heatmaps) are the class token's row of the last layer's approximate attention
matrix (``attn1 @ pinv(attn2) @ attn3``), averaged over heads, summed over a tile's square-padding
copies, clipped at 0 (the approximation can go slightly negative) and normalized to sum to 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from wsi_ssl.mil.aggregators.base import (
    AggOutput,
    Aggregator,
    Head,
    check_attention_widths,
)
from wsi_ssl.mil.aggregators.registry import register_aggregator

if TYPE_CHECKING:
    from wsi_ssl.mil.config import AggregatorConfig

PINV_ITERATIONS = 6  # the authors' setting ("6 was recommended by the paper")
RESIDUAL_KERNEL = 33  # nystrom-attention's default, which TransMIL keeps


def ceil_sqrt(n: torch.Tensor) -> torch.Tensor:
    """ceil(sqrt(n)) for integer tensors, exact (a float32 sqrt rounds k^2 + 1 down to k for large k)."""
    s = torch.sqrt(n.to(torch.float64)).floor().to(n.dtype)
    s = s + (s * s < n).to(n.dtype)
    return s - ((s - 1) * (s - 1) >= n).to(n.dtype) * (s > 0).to(n.dtype)


def pinv_newton_schulz(x: torch.Tensor, iters: int = PINV_ITERATIONS) -> torch.Tensor:
    """Iterative Moore-Penrose pseudo-inverse of ``x`` [B, H, m, m], as nystrom-attention does it,
    with the starting point ``x^T / (max row sum * max column sum)`` taken per bag (over its heads)
    instead of over the whole batch."""
    abs_x = x.abs()
    scale = abs_x.sum(dim=-1).amax(dim=(1, 2)) * abs_x.sum(dim=-2).amax(dim=(1, 2))  # [B]
    z = x.transpose(-1, -2) / scale[:, None, None, None]
    eye = torch.eye(x.shape[-1], device=x.device, dtype=x.dtype)
    for _ in range(iters):
        xz = x @ z
        z = 0.25 * z @ (13 * eye - (xz @ (15 * eye - (xz @ (7 * eye - xz)))))
    return z


class NystromAttention(nn.Module):
    """Nystrom self-attention (Xiong et al. 2021) with per-bag landmarks; see the module docstring.

    Parameter names follow lucidrains' ``NystromAttention`` (``to_qkv``, ``to_out``, ``res_conv``),
    so its state dict loads into the package's module and back.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        num_landmarks: int,
        dropout: float = 0.0,
        pinv_iterations: int = PINV_ITERATIONS,
        residual_kernel: int = RESIDUAL_KERNEL,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.num_landmarks = num_landmarks
        self.pinv_iterations = pinv_iterations
        self.scale = (dim // heads) ** -0.5
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))
        self.res_conv = nn.Conv2d(
            heads, heads, (residual_kernel, 1), padding=(residual_kernel // 2, 0), groups=heads, bias=False
        )

    def forward(
        self, x: torch.Tensor, n_tokens: torch.Tensor, want_cls_attn: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` [B, L, D] whose first ``n_tokens[b]`` rows are bag b's sequence (the rest is padding).

        Returns the attention output [B, L, D] (zero on padding) and, on request, the first
        token's attention over the sequence [B, H, L].
        """
        b, length, d = x.shape
        h, m = self.heads, self.num_landmarks
        valid = torch.arange(length, device=x.device)[None, :] < n_tokens[:, None]  # [B, L]
        vmask = valid[:, None, :, None].to(x.dtype)
        q, k, v = (t.reshape(b, length, h, d // h).transpose(1, 2) * vmask for t in self.to_qkv(x).chunk(3, dim=-1))
        q = q * self.scale
        # The package pads each sequence at the front with zero tokens to a multiple of m and cuts it
        # into m segments of l tokens; landmarks are segment sums / l (the zeros count in l).
        pad = (-n_tokens) % m  # [B]
        seg_len = (n_tokens + pad) // m  # [B], >= 1
        segment = ((torch.arange(length, device=x.device)[None, :] + pad[:, None]) // seg_len[:, None]).clamp(max=m - 1)
        index = segment[:, None, :, None].expand(b, h, length, d // h)
        div = seg_len.to(x.dtype)[:, None, None, None]
        q_land = q.new_zeros(b, h, m, d // h).scatter_add(2, index, q) / div
        k_land = k.new_zeros(b, h, m, d // h).scatter_add(2, index, k) / div
        attn1 = torch.softmax(q @ k_land.transpose(-1, -2), dim=-1)  # [B, H, L, m]
        attn2 = torch.softmax(q_land @ k_land.transpose(-1, -2), dim=-1)  # [B, H, m, m]
        attn3 = self._landmark_to_tokens(q_land @ k.transpose(-1, -2), valid, pad)  # [B, H, m, L]
        attn2_inv = pinv_newton_schulz(attn2, self.pinv_iterations)
        out = (attn1 @ attn2_inv) @ (attn3 @ v)
        out = out + self.res_conv(v)  # v is zero on padding: the conv sees the zero padding it would alone
        out = self.to_out(out.transpose(1, 2).reshape(b, length, d)) * valid[..., None].to(x.dtype)
        cls_attn = None
        if want_cls_attn:
            cls_attn = ((attn1[:, :, :1] @ attn2_inv) @ attn3)[:, :, 0]  # [B, H, L]
        return out, cls_attn

    @staticmethod
    def _landmark_to_tokens(logits: torch.Tensor, valid: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """Softmax over each bag's real keys plus its ``pad`` front-padding zero keys (logit 0, value 0),
        with batch padding excluded: the normalizer the package has for that bag alone."""
        logits = logits.masked_fill(~valid[:, None, None, :], float("-inf"))
        top = logits.amax(dim=-1, keepdim=True)
        has_pad = (pad > 0)[:, None, None, None]
        top = torch.where(has_pad, top.clamp(min=0.0), top).detach()
        e = torch.exp(logits - top)
        denom = e.sum(dim=-1, keepdim=True) + pad.to(logits.dtype)[:, None, None, None] * torch.exp(-top)
        return e / denom


class TransLayer(nn.Module):
    """``x + NystromAttention(LayerNorm(x))``, as in the authors' code."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = NystromAttention(dim, heads, num_landmarks=dim // 2, dropout=dropout)

    def forward(
        self, x: torch.Tensor, n_tokens: torch.Tensor, want_cls_attn: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, cls_attn = self.attn(self.norm(x), n_tokens, want_cls_attn)
        return x + out, cls_attn


class PPEG(nn.Module):
    """Pyramid position encoding generator: the tokens on their square, plus 7x7, 5x5, 3x3 depthwise convs.

    Each bag's ``side x side`` square sits in the top-left corner of the batch's ``S x S`` grid
    with zeros around it, which is exactly the zero padding its convolutions see alone.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 7, 1, 7 // 2, groups=dim)
        self.proj1 = nn.Conv2d(dim, dim, 5, 1, 5 // 2, groups=dim)
        self.proj2 = nn.Conv2d(dim, dim, 3, 1, 3 // 2, groups=dim)

    def forward(self, x: torch.Tensor, side: torch.Tensor, grid: int) -> torch.Tensor:
        """``x`` [B, 1 + grid^2, D]: class token, then bag b's side[b]^2 tokens in raster order."""
        b, _, d = x.shape
        cls_token, tokens = x[:, :1], x[:, 1:]
        j = torch.arange(tokens.shape[1], device=x.device)[None, :]
        inside = j < (side * side)[:, None]
        cell = torch.where(
            inside, (j // side[:, None]) * grid + j % side[:, None], grid * grid
        )  # grid*grid: a spare cell
        index = cell[..., None].expand(b, tokens.shape[1], d)
        cells = tokens.new_zeros(b, grid * grid + 1, d).scatter(1, index, tokens * inside[..., None].to(x.dtype))
        feat = cells[:, :-1].transpose(1, 2).reshape(b, d, grid, grid)
        feat = self.proj(feat) + feat + self.proj1(feat) + self.proj2(feat)
        flat = torch.cat([feat.flatten(2).transpose(1, 2), tokens.new_zeros(b, 1, d)], dim=1)
        return torch.cat([cls_token, flat.gather(1, index)], dim=1)


class TransMIL(Aggregator):
    def __init__(self, in_dim: int, n_heads: int = 8, n_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.out_dim = in_dim
        self.cls_token = nn.Parameter(torch.randn(1, 1, in_dim))
        self.layers = nn.ModuleList(TransLayer(in_dim, n_heads, dropout) for _ in range(n_layers))
        self.pos_layer = PPEG(in_dim)
        self.norm = nn.LayerNorm(in_dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:
        b, n, d = h.shape
        counts = mask.sum(dim=1)  # [B], stays on the device: every size below is a tensor or from shapes
        side = ceil_sqrt(counts)
        grid = math.isqrt(n - 1) + 1 if n else 0  # ceil(sqrt(n)): the largest square a bag of this batch can need
        # The square: bag b's real instances in order, then its first side^2 - count again.
        order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices  # real rows first
        j = torch.arange(grid * grid, device=h.device)[None, :]
        inside = j < (side * side)[:, None]
        src = order.gather(1, j % counts.clamp(min=1)[:, None])  # [B, grid^2] row of h per square slot
        tokens = h.gather(1, src[..., None].expand(b, grid * grid, d)) * inside[..., None].to(h.dtype)
        x = torch.cat([self.cls_token.expand(b, -1, -1).to(h.dtype), tokens], dim=1)
        n_tokens = 1 + side * side
        last = len(self.layers) - 1
        x, cls_attn = self.layers[0](x, n_tokens, want_cls_attn=last == 0)
        x = self.pos_layer(x, side, grid)
        for i, layer in enumerate(self.layers[1:], start=1):
            x, cls_attn = layer(x, n_tokens, want_cls_attn=i == last)
        assert cls_attn is not None
        slot = cls_attn.mean(dim=1)[:, 1:].clamp(min=0.0) * inside.to(h.dtype)  # [B, grid^2]
        scores = h.new_zeros(b, n).scatter_add(1, src, slot)  # copies of a tile add up; padding gets 0
        scores = scores / scores.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return AggOutput(embedding=self.norm(x)[:, 0], scores=scores)


def _check(cfg: AggregatorConfig) -> None:
    check_attention_widths(cfg)
    if cfg.hidden_dim < 2:
        raise ValueError("aggregator.hidden_dim must be >= 2 for transmil (hidden_dim // 2 Nystrom landmarks)")
    if cfg.n_layers < 2:
        raise ValueError("aggregator.n_layers must be >= 2 for transmil (PPEG sits between the first two TransLayers)")


@register_aggregator("transmil", check=_check)
def _build(cfg: AggregatorConfig, in_dim: int) -> Aggregator:
    return TransMIL(in_dim, n_heads=cfg.n_heads, n_layers=cfg.n_layers, dropout=cfg.dropout)
