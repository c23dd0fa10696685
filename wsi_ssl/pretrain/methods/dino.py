"""DINO (Caron et al. 2021), with DINOv2's KoLeo regulariser and iBOT patch loss as options.

A student and an EMA teacher, each a backbone plus a DINO head. Views are made on the training
device from the uint8 batch (``multicrop``): the student runs all global views in one pass and
all local views in a second (two resolutions, one pass each); the teacher runs the global views
once. ``dino.koleo_weight > 0`` adds KoLeo on the student's class tokens of each global view;
``dino.ibot_weight > 0`` masks patches of the student's global views and adds iBOT's loss on
them (through the DINO heads, or separate patch heads with ``dino.ibot_separate_head``).
EMA momentum and teacher temperature are pure functions of the step, like the LR.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from wsi_ssl.pretrain import schedules
from wsi_ssl.pretrain.dino import DINOLoss
from wsi_ssl.pretrain.heads import DINOHead
from wsi_ssl.pretrain.ibot import IBOTPatchLoss, num_prefix_tokens, random_patch_mask, vit_tokens
from wsi_ssl.pretrain.koleo import koleo_loss
from wsi_ssl.pretrain.methods.base import PretrainMethod
from wsi_ssl.pretrain.multicrop import MultiCrop, Views

if TYPE_CHECKING:
    from wsi_ssl.pretrain.module import PretrainModule


class DINOMethod(PretrainMethod):
    """Self-distillation; adds ``student_head``, ``teacher``, ``teacher_head``, ``dino_loss``,
    ``multicrop`` and, with iBOT, ``mask_token``, ``ibot_loss`` (and the patch heads) to the module."""

    name = "dino"

    def build(self, module: PretrainModule) -> None:
        d = self.cfg.dino
        dim = module.embed_dim
        module.student_head = DINOHead(dim, d.out_dim, d.hidden_dim, d.bottleneck_dim, d.norm_last_layer)
        module.teacher = copy.deepcopy(module.student)
        module.teacher_head = copy.deepcopy(module.student_head)
        for p in list(module.teacher.parameters()) + list(module.teacher_head.parameters()):
            p.requires_grad = False
        for m in module.teacher.modules():  # the teacher sees no drop-path noise
            if m.__class__.__name__ == "DropPath":
                m.drop_prob = 0.0  # type: ignore[assignment]
        module.dino_loss = DINOLoss(d.out_dim, d.student_temp, d.center_momentum)
        module.multicrop = MultiCrop(self.cfg.crops, self.cfg.augment)  # type: ignore[assignment]  # plain object
        if d.ibot_weight > 0:
            module.mask_token = nn.Parameter(torch.zeros(dim))
            nn.init.normal_(module.mask_token, std=0.02)
            module.ibot_loss = IBOTPatchLoss(d.out_dim, d.student_temp, d.center_momentum)
            if d.ibot_separate_head:
                module.student_patch_head = DINOHead(dim, d.out_dim, d.hidden_dim, d.bottleneck_dim, d.norm_last_layer)
                module.teacher_patch_head = copy.deepcopy(module.student_patch_head)
                for p in module.teacher_patch_head.parameters():
                    p.requires_grad = False

    # -- schedules ------------------------------------------------------------------------------
    def momentum_at(self, step: int) -> float:
        d = self.cfg.dino
        return schedules.cosine(step, self.cfg.trainer.max_steps, d.momentum_start, d.momentum_end)

    def teacher_temp_at(self, step: int) -> float:
        d = self.cfg.dino
        return schedules.linear_warmup(step, d.teacher_temp_warmup_steps, d.warmup_teacher_temp, d.teacher_temp)

    # -- the step -------------------------------------------------------------------------------
    def losses(self, module: PretrainModule, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views from the uint8 batch (on its device), then :meth:`forward_views`."""
        return self.forward_views(module, cast(MultiCrop, module.multicrop)(tiles))

    def forward_views(self, module: PretrainModule, views: Views) -> dict[str, torch.Tensor]:
        """Losses of one DINO step on ready views: 2 student passes (globals, locals), 1 teacher pass."""
        d, step = self.cfg.dino, module.global_step
        student, teacher = module.student, _net(module, "teacher")
        student_head, teacher_head = _head(module, "student_head"), _head(module, "teacher_head")
        g = views.global_views
        npre = num_prefix_tokens(student)
        mask = None
        if d.ibot_weight > 0:
            patch = student.patch_embed.patch_size  # type: ignore[union-attr]
            grid = int((g.shape[-2] // patch[0]) * (g.shape[-1] // patch[1]))  # type: ignore[index]
            mask = random_patch_mask(g.shape[0], grid, d.ibot_mask_ratio, d.ibot_mask_prob, g.device)
        s_tok = vit_tokens(student, g, mask, getattr(module, "mask_token", None))
        s_cls = [s_tok[:, 0]]
        if views.local_views is not None:
            s_cls.append(student.forward_features(views.local_views)[:, 0])  # type: ignore[operator]
        s_logits = student_head(torch.cat(s_cls))
        with torch.no_grad():
            t_tok = teacher.forward_features(g)  # type: ignore[operator]
            t_logits = teacher_head(t_tok[:, 0])
        temp = self.teacher_temp_at(step)
        out: dict[str, torch.Tensor] = {}
        loss = out["dino_loss"] = cast(DINOLoss, module.dino_loss)(s_logits, t_logits, views.n_global, temp)
        if d.koleo_weight > 0:
            kl = sum(koleo_loss(c) for c in s_tok[:, 0].float().chunk(views.n_global))
            out["koleo_loss"] = kl  # type: ignore[assignment]
            loss = loss + d.koleo_weight * kl
        if mask is not None:
            s_head = getattr(module, "student_patch_head", student_head)
            t_head = getattr(module, "teacher_patch_head", teacher_head)
            s_patch = s_head(s_tok[:, npre:][mask])  # only the masked tokens go through the head
            with torch.no_grad():
                t_patch = t_head(t_tok[:, npre:][mask])
            ibot_loss = cast(IBOTPatchLoss, module.ibot_loss)
            ib = ibot_loss.forward_flat(s_patch, t_patch, mask, temp) if mask.any() else loss.new_zeros(())
            out["ibot_loss"] = ib
            loss = loss + d.ibot_weight * ib
        out["loss"] = loss
        out["teacher_temp"] = torch.tensor(temp)
        out["momentum"] = torch.tensor(self.momentum_at(step))
        return out

    # -- around the step ------------------------------------------------------------------------
    def encoder(self, module: PretrainModule) -> nn.Module:
        """The EMA teacher: the better and more stable network."""
        return _net(module, "teacher")

    def backbones(self, module: PretrainModule) -> dict[str, nn.Module]:
        return {"student": module.student, "teacher": _net(module, "teacher")}

    def on_train_mode(self, module: PretrainModule) -> None:
        _net(module, "teacher").eval()  # the teacher never trains (no dropout/drop-path noise)
        _net(module, "teacher_head").eval()

    def on_after_backward(self, module: PretrainModule, step: int) -> None:
        """Keep the prototypes (the heads' last layers) fixed for ``optim.freeze_last_layer_steps``."""
        if step < self.cfg.optim.freeze_last_layer_steps:
            for head_name in ("student_head", "student_patch_head"):
                head = getattr(module, head_name, None)
                if head is not None:
                    for p in head.last_layer.parameters():
                        p.grad = None

    def on_optimizer_step(self, module: PretrainModule, step: int) -> None:
        self.update_teacher(module, self.momentum_at(step))

    @torch.no_grad()
    def update_teacher(self, module: PretrainModule, momentum: float) -> None:
        """EMA: teacher <- m * teacher + (1 - m) * student, one fused op per parameter list."""
        names = [("student", "teacher"), ("student_head", "teacher_head")]
        if hasattr(module, "teacher_patch_head"):
            names.append(("student_patch_head", "teacher_patch_head"))
        pairs = [(_net(module, s), _net(module, t)) for s, t in names]
        t_params, s_params = [], []
        for s, t in pairs:
            for ps, pt in zip(s.parameters(), t.parameters()):
                t_params.append(pt.data)
                s_params.append(ps.data)
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - momentum)


def _net(module: PretrainModule, name: str) -> nn.Module:
    """A network this method added to the module (typed: ``nn.Module.__getattr__`` is not)."""
    return cast(nn.Module, getattr(module, name))


def _head(module: PretrainModule, name: str) -> DINOHead:
    return cast(DINOHead, getattr(module, name))
