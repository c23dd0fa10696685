"""The Lightning module: one training step of DINO (optionally + KoLeo + iBOT) or MAE.

Views are made on the training device from the uint8 batch (see ``multicrop``). The student runs
all global views in one pass and all local views in a second (two resolutions, one pass each);
the teacher runs the global views once. Learning rate, weight decay, EMA momentum and teacher
temperature are pure functions of the global step (``schedules``), set before each step, so a
resumed run continues every schedule exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
from torch import nn

from wsi_ssl.pretrain import schedules
from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.dino import DINOLoss
from wsi_ssl.pretrain.heads import DINOHead, build_backbone
from wsi_ssl.pretrain.ibot import IBOTPatchLoss, num_prefix_tokens, random_patch_mask, vit_tokens
from wsi_ssl.pretrain.koleo import koleo_loss
from wsi_ssl.pretrain.mae import MAE
from wsi_ssl.pretrain.multicrop import MultiCrop, Views, single_view


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops so the last good checkpoint is kept."""


class PretrainModule(L.LightningModule):
    """Student/teacher (DINO) or encoder/decoder (MAE) around a timm ViT backbone."""

    def __init__(self, config: dict[str, Any], tile_mpp: float | None = None, load_init_weights: bool = True) -> None:
        """``load_init_weights=False`` when a checkpoint's weights follow at once (export, resume): the
        starting weights (``backbone.weights`` / ``backbone.init``) are then neither read nor needed."""
        super().__init__()
        # The checkpoint alone rebuilds the module and says at which MPP the tiles were.
        self.save_hyperparameters({"config": config, "tile_mpp": tile_mpp})
        self.tile_mpp = tile_mpp
        self._step_now = 0
        self.cfg = PretrainConfig.model_validate(config)
        cfg = self.cfg
        self.student = build_backbone(cfg.backbone, load_weights=load_init_weights)
        self.embed_dim = int(self.student.num_features)  # type: ignore[arg-type]
        self.batch_scale = 1.0  # total batch / 256, set at fit start for LR scaling
        if cfg.method == "dino":
            d = cfg.dino
            self.student_head = DINOHead(self.embed_dim, d.out_dim, d.hidden_dim, d.bottleneck_dim, d.norm_last_layer)
            self.teacher = copy.deepcopy(self.student)
            self.teacher_head = copy.deepcopy(self.student_head)
            for p in list(self.teacher.parameters()) + list(self.teacher_head.parameters()):
                p.requires_grad = False
            self._set_teacher_drop_path_off()
            self.dino_loss = DINOLoss(d.out_dim, d.student_temp, d.center_momentum)
            self.multicrop = MultiCrop(cfg.crops, cfg.augment)
            if d.ibot_weight > 0:
                self.mask_token = nn.Parameter(torch.zeros(self.embed_dim))
                nn.init.normal_(self.mask_token, std=0.02)
                self.ibot_loss = IBOTPatchLoss(d.out_dim, d.student_temp, d.center_momentum)
                if d.ibot_separate_head:
                    self.student_patch_head = DINOHead(self.embed_dim, d.out_dim, d.hidden_dim, d.bottleneck_dim, d.norm_last_layer)
                    self.teacher_patch_head = copy.deepcopy(self.student_patch_head)
                    for p in self.teacher_patch_head.parameters():
                        p.requires_grad = False
        else:
            self.mae = MAE(self.student, cfg.crops.global_size, cfg.mae)

    # -- modes ----------------------------------------------------------------------------------
    def _set_teacher_drop_path_off(self) -> None:
        for m in self.teacher.modules():
            if m.__class__.__name__ == "DropPath":
                m.drop_prob = 0.0  # type: ignore[assignment]

    def train(self, mode: bool = True) -> "PretrainModule":
        super().train(mode)
        if self.cfg.method == "dino":
            self.teacher.eval()  # the teacher never trains (no dropout/drop-path noise)
            self.teacher_head.eval()
        return self

    def encoder(self) -> nn.Module:
        """The backbone to export: the EMA teacher for DINO, the encoder for MAE."""
        return self.teacher if self.cfg.method == "dino" else self.student

    @property
    def total_steps(self) -> int:
        return self.cfg.trainer.max_steps

    # -- schedules ------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        o = self.cfg.optim
        peak = o.lr * (self.batch_scale if o.scale_lr_by_batch else 1.0)
        if o.schedule == "infinite":
            return schedules.warmup_constant_cooldown(step, self.total_steps, o.warmup_steps, o.cooldown_steps, peak, o.min_lr)
        return schedules.warmup_cosine(step, self.total_steps, o.warmup_steps, peak, o.min_lr)

    def wd_at(self, step: int) -> float:
        o = self.cfg.optim
        if o.schedule == "infinite":
            return o.weight_decay
        return schedules.cosine(step, self.total_steps, o.weight_decay, o.weight_decay_end)

    def momentum_at(self, step: int) -> float:
        d = self.cfg.dino
        return schedules.cosine(step, self.total_steps, d.momentum_start, d.momentum_end)

    def teacher_temp_at(self, step: int) -> float:
        d = self.cfg.dino
        return schedules.linear_warmup(step, d.teacher_temp_warmup_steps, d.warmup_teacher_temp, d.teacher_temp)

    def on_fit_start(self) -> None:
        world = self.trainer.world_size if self._trainer is not None else 1
        self.batch_scale = self.cfg.data.batch_size * world / 256.0

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        step = self._step_now = self.global_step
        lr, wd = self.lr_at(step), self.wd_at(step)
        for group in self.optimizers().optimizer.param_groups:  # type: ignore[union-attr]
            group["lr"] = lr
            group["weight_decay"] = wd if group.get("decay", True) else 0.0

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            # Biases, norms, tokens and position embeddings are not decayed (as DINO/MAE do).
            if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "token" in name or name.endswith(".pos"):
                no_decay.append(p)
            else:
                decay.append(p)
        o = self.cfg.optim
        groups = [{"params": decay, "decay": True}, {"params": no_decay, "decay": False, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay, betas=o.betas)

    def on_after_backward(self) -> None:
        d = self.cfg.optim
        if self.cfg.method == "dino" and self.global_step < d.freeze_last_layer_steps:
            for head_name in ("student_head", "student_patch_head"):
                head = getattr(self, head_name, None)
                if head is not None:
                    for p in head.last_layer.parameters():
                        p.grad = None

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """EMA: teacher <- m * teacher + (1 - m) * student, one fused op per parameter list."""
        pairs = [(self.student, self.teacher), (self.student_head, self.teacher_head)]
        if hasattr(self, "teacher_patch_head"):
            pairs.append((self.student_patch_head, self.teacher_patch_head))
        t_params, s_params = [], []
        for s, t in pairs:
            for ps, pt in zip(s.parameters(), t.parameters()):
                t_params.append(pt.data)
                s_params.append(ps.data)
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - momentum)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimiser step, then the EMA teacher update with this step's momentum."""
        super().optimizer_step(*args, **kwargs)
        if self.cfg.method == "dino":
            self.update_teacher(self.momentum_at(self._step_now))

    # -- the step -------------------------------------------------------------------------------
    def dino_step(self, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views from the uint8 batch (on its device), then :meth:`dino_forward`."""
        return self.dino_forward(self.multicrop(tiles))

    def dino_forward(self, views: Views) -> dict[str, torch.Tensor]:
        """Losses of one DINO step on ready views: 2 student passes (globals, locals), 1 teacher pass."""
        d, step = self.cfg.dino, self.global_step
        g = views.global_views
        npre = num_prefix_tokens(self.student)
        mask = None
        if d.ibot_weight > 0:
            grid = (g.shape[-2] // self.student.patch_embed.patch_size[0]) * (g.shape[-1] // self.student.patch_embed.patch_size[1])  # type: ignore[index,union-attr]
            mask = random_patch_mask(g.shape[0], grid, d.ibot_mask_ratio, d.ibot_mask_prob, g.device)
        s_tok = vit_tokens(self.student, g, mask, getattr(self, "mask_token", None))
        s_cls = [s_tok[:, 0]]
        if views.local_views is not None:
            s_cls.append(self.student.forward_features(views.local_views)[:, 0])  # type: ignore[operator]
        s_cls_all = torch.cat(s_cls)
        s_logits = self.student_head(s_cls_all)
        with torch.no_grad():
            t_tok = self.teacher.forward_features(g)  # type: ignore[operator]
            t_logits = self.teacher_head(t_tok[:, 0])
        temp = self.teacher_temp_at(step)
        out: dict[str, torch.Tensor] = {}
        loss = out["dino_loss"] = self.dino_loss(s_logits, t_logits, views.n_global, temp)
        if d.koleo_weight > 0:
            kl = sum(koleo_loss(c) for c in s_tok[:, 0].float().chunk(views.n_global))
            out["koleo_loss"] = kl  # type: ignore[assignment]
            loss = loss + d.koleo_weight * kl
        if mask is not None:
            s_head = getattr(self, "student_patch_head", self.student_head)
            t_head = getattr(self, "teacher_patch_head", self.teacher_head)
            s_patch = s_head(s_tok[:, npre:][mask])  # only the masked tokens go through the head
            with torch.no_grad():
                t_patch = t_head(t_tok[:, npre:][mask])
            ib = self.ibot_loss.forward_flat(s_patch, t_patch, mask, temp) if mask.any() else loss.new_zeros(())
            out["ibot_loss"] = ib
            loss = loss + d.ibot_weight * ib
        out["loss"] = loss
        out["teacher_temp"] = torch.tensor(temp)
        out["momentum"] = torch.tensor(self.momentum_at(step))
        return out

    def mae_step(self, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        x = single_view(tiles, self.cfg.crops.global_size, self.cfg.augment, train=True)
        loss, _ = self.mae(x)
        return {"loss": loss}

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        out = self.dino_step(batch) if self.cfg.method == "dino" else self.mae_step(batch)
        loss = out["loss"]
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"the {self.cfg.method} loss is {loss.item()} at step {self.global_step}; the run stops here and "
                "keeps the last good checkpoint (lower optim.lr, raise optim.warmup_steps or enable optim.grad_clip)"
            )
        log = {f"train/{k}": v.detach().float() for k, v in out.items()}
        log["train/lr"] = torch.tensor(self.lr_at(self.global_step))
        log["train/weight_decay"] = torch.tensor(self.wd_at(self.global_step))
        self.log_dict(log, on_step=True, prog_bar=False, batch_size=batch.shape[0], sync_dist=False)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=batch.shape[0])
        return loss
