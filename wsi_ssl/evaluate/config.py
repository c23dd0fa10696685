"""The typed config of ``wsi-ssl evaluate`` (``configs/evaluate/default.yaml`` holds the defaults).

The protocol numbers follow kaiko-ai/eva's published offline classification configs (see
``wsi_ssl.evaluate.protocols.linear``); they are keys here so a lab can match another paper's
protocol without editing code. Validated before any patch is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from wsi_ssl.config import StrictModel

Protocol = Literal["linear", "knn", "fewshot"]
PROTOCOLS: tuple[Protocol, ...] = ("linear", "knn", "fewshot")


class LinearConfig(StrictModel):
    """eva ``crc.yaml``: AdamW lr 3e-4, batch 256, <= 12,500 steps, early stopping patience 7 epochs."""

    lr: float = Field(3e-4, gt=0)
    batch_size: int = Field(256, ge=1)
    max_steps: int = Field(12_500, ge=1)
    patience: int = Field(7, ge=1)  # validation checks without improvement
    min_check_steps: int = Field(100, ge=1)  # checks every epoch, but at most every this many steps
    weight_decay: float = Field(0.01, ge=0)


class KnnConfig(StrictModel):
    k: int = Field(20, ge=1)


class FewShotConfig(StrictModel):
    shots: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16])

    @field_validator("shots")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 1:
            raise ValueError("fewshot.shots: give positive numbers of patches per class, e.g. [1, 2, 4, 8, 16]")
        return sorted(set(v))


class RobustnessConfig(StrictModel):
    shifts: list[str] = Field(
        default_factory=lambda: [
            "hed_weak",
            "hed_medium",
            "hed_strong",
            "brightness_contrast",
            "jpeg_q50",
            "blur",
            "scanner",
        ]
    )
    index_k: int = Field(10, ge=1)  # neighbours of the PathoROB-style robustness index (a `site` column)

    @field_validator("shifts")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from wsi_ssl.evaluate.shifts import SHIFTS

        bad = [s for s in v if s not in SHIFTS]
        if bad:
            raise ValueError(f"robustness.shifts: unknown {bad}; known: {', '.join(SHIFTS)}")
        return v


class StainNormConfig(StrictModel):
    method: Literal["none", "macenko", "reinhard"] = "none"  # applied to every patch, train and test
    reference: str | None = None  # reference image; None = the training patch nearest the median colour


class EvaluateConfig(StrictModel):
    encoders: list[str] = Field(default_factory=list)  # --encoder, repeatable
    encoder_weights: str | None = None  # for a timm name (or "random"), as elsewhere
    dataset: str | None = None  # --dataset: crc, bach, mhist, pcam, folder, csv
    data: Path | None = None  # --data
    mpp: float | None = Field(None, gt=0)  # --mpp: required by folder/csv, an override otherwise
    out: Path | None = None
    cache_dir: Path | None = None  # default OUT/cache
    shard: str | None = None  # I/N over the encoders

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    protocols: list[Protocol] = Field(default_factory=lambda: list(PROTOCOLS))
    linear: LinearConfig = Field(default_factory=LinearConfig)
    knn: KnnConfig = Field(default_factory=KnnConfig)
    fewshot: FewShotConfig = Field(default_factory=FewShotConfig)
    robustness: RobustnessConfig = Field(default_factory=RobustnessConfig)
    stain_norm: StainNormConfig = Field(default_factory=StainNormConfig)
    max_train_patches: int | None = Field(None, ge=10)  # stratified cap on train (+val) patches; None = all
    max_test_patches: int | None = Field(None, ge=10)  # stratified cap on test patches; None = all

    batch_size: int = Field(64, ge=1)
    device: str = "auto"
    workers: int = Field(2, ge=1)  # threads decoding patches
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = torch's default
    progress: bool = True

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or not v:
            raise ValueError("seeds: give distinct seeds (at least 5 for figures with a spread)")
        return v
