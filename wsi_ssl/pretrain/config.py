"""The typed config of ``wsi-ssl pretrain``: one YAML file, validated before any work starts.

Sections mirror the pipeline of a step: which backbone, which method (DINO or MAE: the names of
``wsi_ssl.pretrain.methods.registry``, each with its own section below), how views
are made (crops and augmentations), how the optimiser is scheduled, how Lightning runs it and
what is monitored. Every key has a default so a config only says what differs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from wsi_ssl.config import StrictModel


class BackboneConfig(StrictModel):
    """A timm vision transformer, by name and keyword arguments, or a zoo preset to continue from."""

    arch: str = "vit_small_patch16_224"
    kwargs: dict[str, Any] = Field(default_factory=dict)  # passed to timm.create_model (img_size, depth, ...)
    weights: str | None = None  # local .safetensors/.pth to continue pretraining from; None = random init
    drop_path_rate: float = Field(0.1, ge=0.0, lt=1.0)
    # A preset of the zoo (wsi-ssl encoders list) to start from: its architecture, weights (HF cache,
    # or `weights` as their path) and normalisation replace arch, kwargs and augment.mean/std.
    init: str | None = None


class DataConfig(StrictModel):
    tiles: list[str] = Field(default_factory=list)  # tile-store folders (or single .zarr stores); --tiles wins
    batch_size: int = Field(64, ge=1)  # per device
    num_workers: int = Field(4, ge=0)
    holdout_tiles: int = Field(512, ge=0)  # fixed tiles kept out of training: RankMe and cohort kNN
    min_tissue: float = Field(0.0, ge=0.0, le=1.0)  # skip tiles with less tissue than this
    seed: int = 0


class AugmentConfig(StrictModel):
    """Pathology augmentations, applied batched on the training device."""

    flips: bool = True  # horizontal + vertical flips and 90-degree rotations
    hed_sigma: float = Field(0.05, ge=0.0, le=1.0)  # stain jitter: per-channel scale ~ 1 + N(0, sigma)
    hed_bias: float = Field(0.02, ge=0.0, le=1.0)  # stain jitter: per-channel shift ~ N(0, bias)
    brightness: float = Field(0.2, ge=0.0, le=1.0)
    contrast: float = Field(0.2, ge=0.0, le=1.0)
    saturation: float = Field(0.1, ge=0.0, le=1.0)
    hue: float = Field(0.02, ge=0.0, le=0.5)
    color_p: float = Field(0.8, ge=0.0, le=1.0)  # probability of colour jitter per view
    blur_p: float = Field(0.2, ge=0.0, le=1.0)
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class CropConfig(StrictModel):
    """Multi-crop: global views for teacher and student, local views for the student only."""

    n_global: int = Field(2, ge=1)
    n_local: int = Field(8, ge=0)
    global_size: int = Field(224, ge=8)
    local_size: int = Field(96, ge=8)
    global_scale: tuple[float, float] = (0.32, 1.0)  # area fraction of the tile
    local_scale: tuple[float, float] = (0.05, 0.32)


class DinoConfig(StrictModel):
    out_dim: int = Field(65536, ge=2)  # prototypes
    hidden_dim: int = Field(2048, ge=8)
    bottleneck_dim: int = Field(256, ge=8)
    norm_last_layer: bool = True
    student_temp: float = Field(0.1, gt=0.0)
    teacher_temp: float = Field(0.07, gt=0.0)
    warmup_teacher_temp: float = Field(0.04, gt=0.0)
    teacher_temp_warmup_steps: int = Field(3000, ge=0)
    center_momentum: float = Field(0.9, ge=0.0, lt=1.0)
    momentum_start: float = Field(0.996, ge=0.0, le=1.0)  # EMA teacher, cosine to momentum_end
    momentum_end: float = Field(1.0, ge=0.0, le=1.0)
    koleo_weight: float = Field(0.0, ge=0.0)  # DINOv2 uses 0.1
    ibot_weight: float = Field(0.0, ge=0.0)  # DINOv2 uses 1.0; > 0 turns on masked-patch loss
    ibot_mask_ratio: tuple[float, float] = (0.1, 0.5)
    ibot_mask_prob: float = Field(0.5, ge=0.0, le=1.0)  # fraction of global views that get masked
    ibot_separate_head: bool = False


class MaeConfig(StrictModel):
    mask_ratio: float = Field(0.75, gt=0.0, lt=1.0)
    decoder_dim: int = Field(512, ge=8)
    decoder_depth: int = Field(8, ge=1)
    decoder_heads: int = Field(16, ge=1)
    norm_pix_loss: bool = True


class OptimConfig(StrictModel):
    lr: float = Field(5e-4, gt=0.0)  # peak LR for a total batch of 256 (scaled linearly by batch)
    scale_lr_by_batch: bool = True
    min_lr: float = Field(1e-6, ge=0.0)
    weight_decay: float = Field(0.04, ge=0.0)
    weight_decay_end: float = Field(0.4, ge=0.0)
    warmup_steps: int = Field(1000, ge=0)
    schedule: Literal["cosine", "infinite"] = "cosine"
    cooldown_steps: int = Field(0, ge=0)  # infinite schedule: steps of linear decay at the end
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = Field(3.0, ge=0.0)  # 0 = off
    freeze_last_layer_steps: int = Field(0, ge=0)  # DINO: keep the prototypes fixed at first


class TrainerConfig(StrictModel):
    max_steps: int = Field(100_000, ge=1)
    max_minutes: float | None = Field(None, gt=0.0)  # stop (and checkpoint) after this wall time
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    devices: int | Literal["auto"] = "auto"
    num_nodes: int = Field(1, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    precision: Literal["auto", "bf16-mixed", "16-mixed", "32"] = "auto"  # auto: bf16-mixed on GPU, 32 on CPU
    ckpt_every: int = Field(1000, ge=1)
    val_every: int = Field(1000, ge=1)  # RankMe / kNN every N steps (and at step 0 and the end)
    log_every: int = Field(10, ge=1)
    threads: int | None = Field(None, ge=1)  # torch CPU threads; None = torch's default
    seed: int = 0
    compile: bool = False  # torch.compile the backbone (GPU)


class KnnConfig(StrictModel):
    labels: str | None = None  # a folder of class sub-folders of images, or a CSV (path,label)
    synthetic: bool = True  # score known tissue classes when tiles come from the generated cohort
    k: int = Field(20, ge=1)  # neighbours; every tile is a query against other slides' tiles
    max_tiles: int = Field(2000, ge=10)  # cap on images read from knn.labels
    # Accepted so configs written before kNN became leave-one-slide-out still load; not used.
    test_fraction: float | None = Field(None, gt=0.0, lt=1.0, deprecated="kNN is now leave-one-slide-out")


class ProbeConfig(StrictModel):
    """A labelled patch set scored with ``wsi-ssl evaluate``'s linear probe and kNN every ``val_every`` steps."""

    data: str | None = None  # a folder of class sub-folders, a CSV, or a public dataset's folder
    dataset: str = "folder"  # its kind, as `wsi-ssl evaluate --dataset`: folder, csv, crc, bach, mhist, pcam
    mpp: float | None = Field(None, gt=0.0)  # microns per pixel of the patches (folder and csv need it)
    max_patches: int = Field(2000, ge=20)  # stratified cap (a third of it for the test split)
    seeds: list[int] = Field(default_factory=lambda: [0])  # linear-probe seeds per measurement
    linear_max_steps: int = Field(2000, ge=1)  # eva's schedule, capped: it runs at every val_every
    k: int = Field(20, ge=1)


class MonitorConfig(StrictModel):
    knn: KnnConfig = Field(default_factory=KnnConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)


class PretrainConfig(StrictModel):
    method: str = "dino"  # a registered pretraining method (wsi_ssl.pretrain.methods): dino, mae
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    crops: CropConfig = Field(default_factory=CropConfig)
    dino: DinoConfig = Field(default_factory=DinoConfig)
    mae: MaeConfig = Field(default_factory=MaeConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        from wsi_ssl.pretrain.methods.registry import method_names

        if value not in method_names():
            raise ValueError(f"unknown pretraining method {value!r}; known: {', '.join(method_names())}")
        return value

    @model_validator(mode="after")
    def _from_preset(self) -> PretrainConfig:
        """``backbone.init``: the preset's architecture and input statistics, so its weights see what they know."""
        if not self.backbone.init:
            return self
        from wsi_ssl.encoders.registry import get_preset, preset_names

        try:
            preset = get_preset(self.backbone.init)
        except KeyError:
            raise ValueError(
                f"backbone.init: no encoder preset {self.backbone.init!r}; known: {', '.join(preset_names())}"
            ) from None
        try:
            as_timm = preset.as_timm()  # a transformers DINOv2 preset trains as the same timm model
        except ValueError:
            timm_ones = [n for n in preset_names() if get_preset(n).builder == "timm" or get_preset(n).timm_equivalent]
            raise ValueError(
                f"backbone.init: {preset.name} is not a timm model ({preset.builder}) and has no timm "
                f"equivalent; continued pretraining starts from one of: {', '.join(timm_ones)}"
            ) from None
        if "arch" in self.backbone.model_fields_set and self.backbone.arch != as_timm.arch:
            raise ValueError(
                f"backbone.arch {self.backbone.arch!r} contradicts backbone.init={preset.name} ({as_timm.arch})"
            )
        # Assigned on the sections' dicts so validate_assignment does not re-enter this validator.
        self.backbone.__dict__.update(arch=as_timm.arch, kwargs={**as_timm.kwargs, **self.backbone.kwargs})
        self.augment.__dict__.update(mean=tuple(preset.mean), std=tuple(preset.std))
        return self

    @model_validator(mode="after")
    def _check(self) -> PretrainConfig:
        for name in ("global_scale", "local_scale"):
            lo, hi = getattr(self.crops, name)
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"crops.{name} must satisfy 0 < min <= max <= 1, got {(lo, hi)}")
        lo, hi = self.dino.ibot_mask_ratio
        if not 0.0 <= lo <= hi < 1.0:
            raise ValueError(f"dino.ibot_mask_ratio must satisfy 0 <= min <= max < 1, got {(lo, hi)}")
        if self.optim.schedule == "infinite" and self.optim.cooldown_steps > self.trainer.max_steps:
            raise ValueError("optim.cooldown_steps must not exceed trainer.max_steps")
        return self
