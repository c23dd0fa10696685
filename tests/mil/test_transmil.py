"""``transmil`` is the published TransMIL: checked bag by bag against a direct one-bag rendering of
the authors' forward pass (square padding by repeating the first tiles, class token, TransLayer,
PPEG on the square, TransLayer), whose Nystrom attention is in turn checked against lucidrains'
``nystrom-attention`` (the package TransMIL's authors use) when it is installed.

The shared padding / packed / per-bag / gradient checks run over every aggregator in
``test_aggregators.py``; here the point is that batching changed nothing the paper specifies.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsi_ssl.mil.aggregators.transmil import NystromAttention, TransMIL, ceil_sqrt


def nystrom_reference(layer: NystromAttention, x: torch.Tensor) -> torch.Tensor:
    """What nystrom-attention (mask=None) computes for one sequence ``x`` [n, D], written out plainly."""
    n, d = x.shape
    h, m = layer.heads, layer.num_landmarks
    pad = (-n) % m
    xp = torch.cat([x.new_zeros(pad, d), x])  # zero tokens in front, up to a multiple of m
    q, k, v = (t.reshape(-1, h, d // h).transpose(0, 1) for t in layer.to_qkv(xp).chunk(3, dim=-1))
    q = q * layer.scale
    seg = (n + pad) // m
    q_land = q.reshape(h, m, seg, -1).mean(dim=2)
    k_land = k.reshape(h, m, seg, -1).mean(dim=2)
    attn1 = torch.softmax(q @ k_land.transpose(-1, -2), dim=-1)
    attn2 = torch.softmax(q_land @ k_land.transpose(-1, -2), dim=-1)
    attn3 = torch.softmax(q_land @ k.transpose(-1, -2), dim=-1)
    z = attn2.transpose(-1, -2) / (attn2.abs().sum(-1).max() * attn2.abs().sum(-2).max())
    eye = torch.eye(m)
    for _ in range(layer.pinv_iterations):
        xz = attn2 @ z
        z = 0.25 * z @ (13 * eye - (xz @ (15 * eye - (xz @ (7 * eye - xz)))))
    out = (attn1 @ z) @ (attn3 @ v)
    out = out + F.conv2d(v[None], layer.res_conv.weight, padding=layer.res_conv.padding, groups=h)[0]
    return layer.to_out(out.transpose(0, 1).reshape(-1, d))[-n:]


def transmil_reference(agg: TransMIL, h: torch.Tensor) -> torch.Tensor:
    """The authors' ``TransMIL.forward`` from ``_fc1`` output to the normed class token, one bag [N, D]."""
    n, d = h.shape
    side = math.ceil(math.sqrt(n))
    h = torch.cat([h, h[: side * side - n]])  # their square padding: the first tiles again
    x = torch.cat([agg.cls_token[0], h])
    first, second = agg.layers
    x = x + nystrom_reference(first.attn, first.norm(x))
    cls_token, feat = x[:1], x[1:]
    grid = feat.T.reshape(1, d, side, side)
    ppeg = agg.pos_layer
    grid = ppeg.proj(grid) + grid + ppeg.proj1(grid) + ppeg.proj2(grid)
    x = torch.cat([cls_token, grid[0].flatten(1).T])
    x = x + nystrom_reference(second.attn, second.norm(x))
    return agg.norm(x)[0]


@pytest.mark.parametrize("n", [1, 3, 8, 9, 23, 64, 101])
def test_nystrom_layer_matches_the_one_sequence_computation(n: int) -> None:
    torch.manual_seed(n)
    layer = NystromAttention(16, heads=2, num_landmarks=8).eval()
    x = torch.randn(1, n + 5, 16)
    out, _ = layer(x, torch.tensor([n]))  # 5 rows of batch padding after the sequence
    torch.testing.assert_close(out[0, :n], nystrom_reference(layer, x[0, :n]), atol=1e-5, rtol=1e-4)
    assert float(out[0, n:].abs().sum()) == 0.0


@pytest.mark.parametrize("n", [5, 8, 27, 100])
def test_the_reference_is_what_nystrom_attention_computes(n: int) -> None:
    """Skipped unless lucidrains' ``nystrom-attention`` is installed (not a dependency)."""
    pkg = pytest.importorskip("nystrom_attention")
    torch.manual_seed(n)
    ours = NystromAttention(32, heads=4, num_landmarks=16).eval()
    theirs = pkg.NystromAttention(
        dim=32, dim_head=8, heads=4, num_landmarks=16, pinv_iterations=6, residual=True
    ).eval()
    theirs.load_state_dict(ours.state_dict())  # same parameter names and shapes
    x = torch.randn(1, n, 32)
    torch.testing.assert_close(nystrom_reference(ours, x[0]), theirs(x)[0], atol=1e-5, rtol=1e-4)


def test_transmil_in_a_padded_batch_is_the_authors_model_on_each_bag() -> None:
    torch.manual_seed(0)
    agg = TransMIL(16, n_heads=2).eval()
    sizes = (1, 5, 9, 17, 30)
    h = torch.randn(len(sizes), 40, 16)
    mask = torch.zeros(len(sizes), 40, dtype=torch.bool)
    rows = []
    for i, n in enumerate(sizes):
        keep = torch.randperm(40)[:n].sort().values  # holes in the mask, not just a padded tail
        mask[i, keep] = True
        rows.append(keep)
    out = agg(h, mask)
    for i, keep in enumerate(rows):
        torch.testing.assert_close(out.embedding[i], transmil_reference(agg, h[i, keep]), atol=1e-5, rtol=1e-4)
    assert out.scores is not None
    torch.testing.assert_close(out.scores.sum(dim=1), torch.ones(len(sizes)))
    assert float(out.scores[~mask].abs().sum()) == 0.0


def test_ceil_sqrt_is_exact_where_float32_is_not() -> None:
    n = torch.tensor([0, 1, 2, 4, 5, 16_000_000, 16_000_001, 4_000**2 + 1, 2**40 + 1])
    assert ceil_sqrt(n).tolist() == [math.isqrt(v - 1) + 1 if v else 0 for v in n.tolist()]
