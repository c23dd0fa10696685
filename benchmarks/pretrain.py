"""Throughput of our DINO training step against lightly's DINO, measured side by side.

Both train the same timm ViT with the same DINO head sizes, views (2 global + N local crops of
one batch), batch size, precision and AdamW, in this process, alternating step by step so that
load from other processes on the machine hits both alike. Reported, in images per second:

- ``ours (views)``: our step on ready views (student: one pass for all globals, one for all
  locals; teacher: one pass; factorised loss; fused EMA),
- ``ours (tiles)``: the same plus our batched on-device augmentation and multi-crop from uint8 tiles,
- ``lightly (views)``: lightly's DINO recipe (its README/example loop: one backbone pass per view,
  ``DINOLoss``, ``DINOProjectionHead``, ``update_momentum``) on the same ready views,
- ``bare fwd+bwd``: the student alone, forward + backward on the same views (no teacher, no
  loss): the floor any DINO step pays; our overhead is reported over it.

The last line is the ratio ours (tiles) / lightly (views): our full step, augmentations
included, against lightly's step with its augmentations left out (in lightly they run on the
CPU in DataLoader workers). Usage::

    .venv/bin/python benchmarks/pretrain.py            # CPU-sized defaults
    .venv/bin/python benchmarks/pretrain.py --vit-s    # ViT-S/16, 224/96 crops (for a GPU)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.methods.dino import DINOMethod
from wsi_ssl.pretrain.module import PretrainModule
from wsi_ssl.pretrain.multicrop import Views


def build_config(args: argparse.Namespace) -> PretrainConfig:
    if args.vit_s:
        backbone = {"arch": "vit_small_patch16_224", "kwargs": {}, "drop_path_rate": 0.0}
    else:
        backbone = {
            "arch": "vit_tiny_patch16_224",
            "drop_path_rate": 0.0,
            "kwargs": {
                "img_size": args.global_size,
                "patch_size": args.patch,
                "depth": args.depth,
                "embed_dim": args.dim,
                "num_heads": max(1, args.dim // 64),
            },
        }
    return PretrainConfig.model_validate(
        {
            "method": "dino",
            "backbone": backbone,
            "crops": {
                "n_global": 2,
                "n_local": args.n_local,
                "global_size": args.global_size,
                "local_size": args.local_size,
            },
            "dino": {
                "out_dim": args.out_dim,
                "hidden_dim": args.hidden,
                "bottleneck_dim": args.bottleneck,
                "teacher_temp_warmup_steps": 0,
            },
            "data": {"batch_size": args.batch},
        }
    )


class LightlyDINO(torch.nn.Module):
    """lightly's DINO example model around the same backbone."""

    def __init__(self, backbone: torch.nn.Module, dim: int, cfg: PretrainConfig) -> None:
        super().__init__()
        from lightly.models.modules import DINOProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        d = cfg.dino
        self.student_backbone = backbone
        self.student_head = DINOProjectionHead(dim, d.hidden_dim, d.bottleneck_dim, d.out_dim, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_head = DINOProjectionHead(dim, d.hidden_dim, d.bottleneck_dim, d.out_dim)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student_head(self.student_backbone(x).flatten(start_dim=1))

    def forward_teacher(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher_head(self.teacher_backbone(x).flatten(start_dim=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--global-size", type=int, default=64)
    p.add_argument("--local-size", type=int, default=32)
    p.add_argument("--n-local", type=int, default=6)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--out-dim", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--bottleneck", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vit-s", action="store_true", help="ViT-S/16 at 224/96 (GPU-sized)")
    args = p.parse_args()
    if args.vit_s:
        args.global_size, args.local_size, args.n_local, args.out_dim, args.hidden, args.bottleneck = (
            224,
            96,
            8,
            65536,
            2048,
            256,
        )
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from lightly.loss import DINOLoss as LightlyLoss
    from lightly.models.utils import update_momentum

    cfg = build_config(args)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    dtype = torch.bfloat16 if gpu else None
    ours = PretrainModule(cfg.model_dump(mode="json")).to(device).train()
    ours_opt = ours.configure_optimizers()
    dino = ours.method
    assert isinstance(dino, DINOMethod)
    theirs = LightlyDINO(copy.deepcopy(ours.student), ours.embed_dim, cfg).to(device).train()
    theirs_opt = torch.optim.AdamW([q for q in theirs.parameters() if q.requires_grad], lr=1e-4)
    theirs_loss = LightlyLoss(output_dim=cfg.dino.out_dim, teacher_temp=cfg.dino.teacher_temp).to(device)
    bare = copy.deepcopy(ours.student).to(device).train()
    bare_head = copy.deepcopy(ours.student_head).to(device).train()
    bare_opt = torch.optim.AdamW(list(bare.parameters()) + list(bare_head.parameters()), lr=1e-4)

    tiles = torch.randint(
        0, 256, (args.batch, 3, args.global_size + 16, args.global_size + 16), dtype=torch.uint8, device=device
    )
    views: Views = ours.multicrop(tiles)
    view_list = list(views.global_views.chunk(2)) + (
        list(views.local_views.chunk(args.n_local)) if views.local_views is not None else []
    )

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def ours_step(from_tiles: bool) -> None:
        with autocast():
            out = ours.losses(tiles) if from_tiles else dino.forward_views(ours, views)
        ours_opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_([q for q in ours.parameters() if q.requires_grad], 3.0)
        ours_opt.step()
        dino.update_teacher(ours, 0.996)

    def lightly_step() -> None:
        with autocast():
            teacher_out = [theirs.forward_teacher(v) for v in view_list[:2]]
            student_out = [theirs.forward(v) for v in view_list]
            loss = theirs_loss(teacher_out, student_out, epoch=0)
        theirs_opt.zero_grad(set_to_none=True)
        loss.backward()
        theirs.student_head.cancel_last_layer_gradients(current_epoch=1)
        torch.nn.utils.clip_grad_norm_([q for q in theirs.parameters() if q.requires_grad], 3.0)
        theirs_opt.step()
        update_momentum(theirs.student_backbone, theirs.teacher_backbone, m=0.996)
        update_momentum(theirs.student_head, theirs.teacher_head, m=0.996)

    def bare_step() -> None:
        with autocast():
            out = bare_head(bare(views.global_views)).float().mean()
            if views.local_views is not None:
                out = out + bare_head(bare(views.local_views)).float().mean()
        bare_opt.zero_grad(set_to_none=True)
        out.backward()
        bare_opt.step()

    variants: dict[str, Callable[[], None]] = {
        "ours (views)": lambda: ours_step(False),
        "ours (tiles)": lambda: ours_step(True),
        "lightly (views)": lightly_step,
        "bare fwd+bwd": bare_step,
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(args.warmup + args.steps):
        for name, fn in variants.items():  # interleaved: machine load hits every variant alike
            if gpu:
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if gpu:
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t)
    n_views = 2 + args.n_local
    print(
        f"device {device} ({'bf16-mixed' if dtype else 'fp32'}), threads {torch.get_num_threads()}, "
        f"backbone {cfg.backbone.arch} {cfg.backbone.kwargs}, batch {args.batch}, views 2x{args.global_size}px + "
        f"{args.n_local}x{args.local_size}px, head out {cfg.dino.out_dim}; median of {args.steps} steps"
    )
    ips = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        ips[name] = args.batch / med
        print(f"  {name:16s} {med * 1000:8.1f} ms/step  {ips[name]:8.1f} images/s  ({ips[name] * n_views:.0f} views/s)")
    print(
        f"overhead of our step (views) over bare student fwd+bwd: {ips['bare fwd+bwd'] / ips['ours (views)']:.2f}x time"
    )
    print(f"ours (views) / lightly (views): {ips['ours (views)'] / ips['lightly (views)']:.2f}")
    print(
        f"ratio ours (tiles, augmentation included) / lightly (views): {ips['ours (tiles)'] / ips['lightly (views)']:.2f}"
    )


if __name__ == "__main__":
    main()
