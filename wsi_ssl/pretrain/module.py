"""The Lightning module: the backbone, the optimiser and its schedules around one pretraining method.

What differs between methods (DINO with KoLeo/iBOT, MAE, ...) lives in ``wsi_ssl.pretrain.methods``:
the method named by ``cfg.method`` adds its networks to this module and computes each step's
losses. Learning rate and weight decay (and a method's own schedules, such as DINO's EMA
momentum and teacher temperature) are pure functions of the global step (``schedules``), set
before each step, so a resumed run continues every schedule exactly.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from wsi_ssl.pretrain import schedules
from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.heads import build_backbone
from wsi_ssl.pretrain.methods.base import PretrainMethod
from wsi_ssl.pretrain.methods.registry import get_method


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops so the last good checkpoint is kept."""


class PretrainModule(L.LightningModule):
    """A timm ViT backbone (``student``) trained by the configured :class:`PretrainMethod`.

    The method's parts are attributes of this module (``teacher``, ``student_head``, ``mae``, ...),
    so the checkpoint's keys are the same as before methods were classes.
    """

    def __init__(self, config: dict[str, Any], tile_mpp: float | None = None, load_init_weights: bool = True) -> None:
        """``load_init_weights=False`` when a checkpoint's weights follow at once (export, resume): the
        starting weights (``backbone.weights`` / ``backbone.init``) are then neither read nor needed."""
        super().__init__()
        # The checkpoint alone rebuilds the module and says at which MPP the tiles were.
        self.save_hyperparameters({"config": config, "tile_mpp": tile_mpp})
        self.tile_mpp = tile_mpp
        self._step_now = 0
        self.cfg = PretrainConfig.model_validate(config)
        self.student = build_backbone(self.cfg.backbone, load_weights=load_init_weights)
        self.embed_dim = int(self.student.num_features)  # type: ignore[arg-type]
        self.batch_scale = 1.0  # total batch / 256, set at fit start for LR scaling
        self.method: PretrainMethod = get_method(self.cfg.method)(self.cfg)
        self.method.build(self)

    # -- modes ----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> PretrainModule:
        super().train(mode)
        self.method.on_train_mode(self)
        return self

    def encoder(self) -> nn.Module:
        """The backbone to export (the EMA teacher for DINO, the encoder for MAE)."""
        return self.method.encoder(self)

    def monitored_backbones(self) -> dict[str, nn.Module]:
        """The networks the monitor measures, by name (``student``, and ``teacher`` for DINO)."""
        return self.method.backbones(self)

    @property
    def total_steps(self) -> int:
        return self.cfg.trainer.max_steps

    # -- schedules ------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        o = self.cfg.optim
        peak = o.lr * (self.batch_scale if o.scale_lr_by_batch else 1.0)
        if o.schedule == "infinite":
            return schedules.warmup_constant_cooldown(
                step, self.total_steps, o.warmup_steps, o.cooldown_steps, peak, o.min_lr
            )
        return schedules.warmup_cosine(step, self.total_steps, o.warmup_steps, peak, o.min_lr)

    def wd_at(self, step: int) -> float:
        o = self.cfg.optim
        if o.schedule == "infinite":
            return o.weight_decay
        return schedules.cosine(step, self.total_steps, o.weight_decay, o.weight_decay_end)

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
        self.method.on_after_backward(self, self.global_step)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimiser step, then the method's own update (DINO's EMA teacher) for this step."""
        super().optimizer_step(*args, **kwargs)
        self.method.on_optimizer_step(self, self._step_now)

    # -- the step -------------------------------------------------------------------------------
    def losses(self, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        """The method's losses on a uint8 batch (``"loss"`` is minimised, the rest is logged)."""
        return self.method.losses(self, tiles)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        out = self.losses(batch)
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
