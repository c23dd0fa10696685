"""The tiling config (``configs/tile/default.yaml``), validated before any slide is opened."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from wsi_ssl.config import StrictModel
from wsi_ssl.slide.readers import check_backend
from wsi_ssl.slide.tissue import TissueConfig


class TileConfig(StrictModel):
    mpp: float = Field(0.5, gt=0, le=100, description="target microns per pixel of the tiles")
    tile_size: int = Field(224, ge=8, le=4096, description="tile edge in pixels at the target MPP")
    overlap: int = Field(0, ge=0, description="pixels shared by neighbouring tiles (stride = tile_size - overlap)")
    min_tissue: float = Field(0.25, ge=0, le=1, description="tiles with a smaller tissue fraction are not written")
    mpp_tolerance: float = Field(0.02, ge=0, lt=0.5, description="read natively (no resize) within this relative MPP")
    backend: str = Field(
        "auto",
        description="slide reader: auto (the reader claiming the format, then OpenSlide, tiffslide, wsidicom) "
        "or a name in the reader registry",
    )
    mpp_override: float | None = Field(None, gt=0, description="MPP for slides whose files carry none")
    workers: int = Field(0, ge=0, description="processes; 0 = one per CPU core")
    codec: Literal["jpeg", "png", "raw"] = "jpeg"
    quality: int = Field(90, ge=1, le=100, description="JPEG quality of the stored tiles")
    shard_tiles: int = Field(256, ge=1, le=65536, description="tiles per shard file")
    read_block: int = Field(2048, ge=256, le=16384, description="edge in level pixels of one region read")
    qc: bool = Field(True, description="write OUT/qc/<slide_id>.png")
    qc_max_size: int = Field(1600, ge=128, description="longest edge of the QC image")
    tissue: TissueConfig = Field(default_factory=TissueConfig)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return check_backend(value)  # the names live in one place: wsi_ssl/slide/readers/registry.py

    @model_validator(mode="after")
    def _overlap_below_tile(self) -> TileConfig:
        if self.overlap >= self.tile_size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than tile_size ({self.tile_size})")
        return self

    @property
    def stride(self) -> int:
        return self.tile_size - self.overlap
