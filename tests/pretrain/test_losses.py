"""Losses, schedules and monitor metrics against reference implementations and known values."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from reference_dino import DINOLoss as UpstreamDINOLoss

from wsi_ssl.pretrain import schedules
from wsi_ssl.pretrain.dino import DINOLoss
from wsi_ssl.pretrain.ibot import IBOTPatchLoss, random_patch_mask
from wsi_ssl.pretrain.koleo import koleo_loss
from wsi_ssl.pretrain.mae import mae_loss, patchify
from wsi_ssl.pretrain.monitor import knn_leave_group_out, rankme


# Plain train/test kNN: the reference the leave-one-group-out kNN is held to.
def knn_accuracy(
    train: torch.Tensor,
    train_y: torch.Tensor,
    test: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Weighted kNN (cosine, exp(sim / T) votes) accuracy of ``test`` against ``train``."""
    train = F.normalize(train.float(), dim=-1)
    test = F.normalize(test.float(), dim=-1)
    k = min(k, train.shape[0])
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    sim, idx = (test @ train.t()).topk(k, dim=1)
    votes = torch.zeros(test.shape[0], n_classes)
    votes.scatter_add_(1, train_y[idx], torch.exp(sim / temperature))
    return float((votes.argmax(1) == test_y).float().mean())


def test_factorised_dino_loss_equals_the_double_loop() -> None:
    """Against DINO's own loss (a verbatim copy, tests/pretrain/reference_dino.py): value and centre."""
    g = torch.Generator().manual_seed(0)
    b, k, n_global, n_local = 5, 16, 2, 4
    student = torch.randn((n_global + n_local) * b, k, generator=g)
    teacher = torch.randn(n_global * b, k, generator=g)
    loss_fn = DINOLoss(k, student_temp=0.1, center_momentum=0.9)
    loss_fn.center.copy_(torch.randn(1, k, generator=g) * 0.1)
    center = loss_fn.center.clone()
    got = loss_fn(student, teacher, n_global, teacher_temp=0.05)
    upstream = UpstreamDINOLoss(
        k,
        n_global + n_local,
        warmup_teacher_temp=0.05,
        teacher_temp=0.05,
        warmup_teacher_temp_epochs=0,
        nepochs=1,
        student_temp=0.1,
        center_momentum=0.9,
    )
    upstream.center.copy_(center)
    ref = upstream(student, teacher, epoch=0)
    assert torch.allclose(got, ref.float(), atol=1e-5)
    # The centre moved towards the teacher batch mean by (1 - momentum), as upstream's did.
    assert torch.allclose(loss_fn.center, 0.9 * center + 0.1 * teacher.mean(0, keepdim=True), atol=1e-6)
    assert torch.allclose(loss_fn.center, upstream.center, atol=1e-6)


def test_koleo_matches_brute_force_nearest_neighbour() -> None:
    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    xn = F.normalize(x, dim=-1)
    d = torch.cdist(xn, xn) + torch.eye(12) * 10
    ref = -torch.log(d.min(1).values + 1e-8).mean()
    assert torch.allclose(koleo_loss(x), ref, atol=1e-4)


def test_ibot_flat_loss_equals_full_loss_on_masked_patches() -> None:
    g = torch.Generator().manual_seed(2)
    b, n, k = 4, 9, 10
    mask = random_patch_mask(b, n, (0.3, 0.6), 0.75, torch.device("cpu"), g)
    mask[0] = False  # one image without masked patches must not count
    mask[1, 0] = True
    s, t = torch.randn(b, n, k, generator=g), torch.randn(b, n, k, generator=g)
    full = IBOTPatchLoss(k)(s, t, mask, 0.05)
    flat = IBOTPatchLoss(k).forward_flat(s[mask], t[mask], mask, 0.05)
    assert torch.allclose(full, flat, atol=1e-6)
    per_image = []
    for i in range(b):
        if mask[i].any():
            q = F.softmax(t[i][mask[i]] / 0.05, -1)
            per_image.append(-(q * F.log_softmax(s[i][mask[i]] / 0.1, -1)).sum(-1).mean())
    assert torch.allclose(full, torch.stack(per_image).mean(), atol=1e-6)


def test_patchify_and_normalised_pixel_loss() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    p = patchify(x, 2)
    assert p.shape == (2, 4, 12)
    assert torch.equal(p[0, 1].view(2, 2, 3)[..., 0], x[0, 0, 0:2, 2:4])  # patch 1 = top-right block
    target = torch.randn(2, 4, 12)
    norm = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    mask = torch.tensor([[True, False, False, False], [False, False, False, True]])
    assert float(mae_loss(norm.clone(), target, mask, norm_pix=True)) < 1e-8
    assert math.isclose(
        float(mae_loss(torch.zeros_like(target), target, mask, norm_pix=False)),
        float((target[mask] ** 2).mean()),
        rel_tol=1e-6,
    )


def test_rankme_of_gaussian_is_near_full_rank_and_of_rank_one_near_one() -> None:
    g = torch.Generator().manual_seed(3)
    full = rankme(torch.randn(2000, 32, generator=g))
    assert 0.9 * 32 < full <= 32
    u, v = torch.randn(500, 1, generator=g), torch.randn(1, 32, generator=g)
    assert 1.0 <= rankme(u @ v) < 1.01


def test_leave_group_out_knn_equals_per_group_train_test_knn() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 8, generator=g)
    y = torch.randint(0, 3, (60,), generator=g)
    groups = np.repeat(np.arange(4), 15)
    correct = 0.0
    for grp in range(4):
        te = groups == grp
        correct += knn_accuracy(x[~te], y[~te], x[te], y[te], k=5) * te.sum()
    assert math.isclose(knn_leave_group_out(x, y, groups, k=5), correct / 60, abs_tol=1e-6)
    # Slides whose tiles only resemble each other score by the other slides, not by themselves.
    twins = torch.cat([x[:10], x[:10] + 1e-3])
    labels = torch.cat([torch.zeros(10, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    assert knn_leave_group_out(twins, labels, np.repeat([0, 1], 10), k=1) == 0.0


def test_schedules_hit_their_end_points() -> None:
    assert schedules.warmup_cosine(0, 100, 10, 1.0, 0.0) == 0.1
    assert schedules.warmup_cosine(9, 100, 10, 1.0, 0.0) == 1.0
    assert schedules.warmup_cosine(10, 100, 10, 1.0, 0.0) == 1.0
    assert math.isclose(schedules.warmup_cosine(100, 100, 10, 1.0, 0.01), 0.01)
    values = [schedules.warmup_cosine(s, 100, 10, 1.0, 0.0) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    # Infinite schedule: constant after warm-up, linear cool-down over the last 20 steps.
    inf = [schedules.warmup_constant_cooldown(s, 100, 10, 20, 1.0, 0.0) for s in range(101)]
    assert inf[10] == inf[79] == 1.0 and math.isclose(inf[90], 0.5) and inf[100] == 0.0
    assert schedules.linear_warmup(0, 10, 0.04, 0.07) == 0.04 and schedules.linear_warmup(10, 10, 0.04, 0.07) == 0.07
    assert np.isclose(schedules.cosine(50, 100, 0.996, 1.0), 0.998)
