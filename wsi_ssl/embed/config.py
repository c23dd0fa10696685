"""The typed config of ``wsi-ssl embed`` (``configs/embed/default.yaml`` holds the defaults).

Validated before any slide is touched, so a typo or an impossible value (fp16 on a CPU run, a
negative batch size) stops the run with a message naming the key instead of failing an hour in.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from wsi_ssl.config import StrictModel
from wsi_ssl.storage.paths import AnyPath, PathOrURL

Precision = Literal["fp32", "bf16", "fp16"]
FeatureDtype = Literal["float32", "float16"]
PreprocessWhere = Literal["auto", "worker", "device"]


class EmbedConfig(StrictModel):
    """Everything one embedding run needs; CLI flags override the YAML keys of the same name."""

    tiles: PathOrURL | None = None  # folder (or s3://, gs:// URL) of tile stores (Contract 1)
    encoder: str | None = None  # encoder dir (Contract 2) or a timm model name
    encoder_weights: str | None = None  # local weights for a timm name ("random" for tests)
    out: PathOrURL | None = None  # folder (or URL) of feature files (Contract 3)

    batch_size: int = Field(64, ge=1)
    workers: int = Field(1, ge=0)  # DataLoader worker processes decoding tiles
    prefetch_factor: int = Field(4, ge=1)  # batches each worker keeps ready
    precision: Precision = "fp32"  # autocast precision of the forward
    dtype: FeatureDtype = "float32"  # storage dtype of the features
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    devices: int = Field(1, ge=1)  # processes per node (Lightning Fabric): one per GPU, or CPU processes (gloo)
    num_nodes: int = Field(1, ge=1)
    compile: bool = False  # torch.compile the encoder
    threads: int = Field(0, ge=0)  # torch threads for the forward on CPU; 0 = all cores
    preprocess_on: PreprocessWhere = "auto"  # auto: workers on CPU, the GPU on CUDA
    mpp_tolerance: float = Field(0.10, ge=0.0)  # relative store-vs-encoder MPP difference allowed
    shard: str | None = None  # I/N; None = SLURM array vars or the whole list
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> EmbedConfig:
        if self.device == "cpu" and self.precision == "fp16":
            raise ValueError("precision: fp16 autocast is for GPUs; use bf16 or fp32 with device cpu")
        return self

    def require_paths(self) -> tuple[AnyPath, str, AnyPath]:
        """The three inputs a run cannot start without, named by key when missing."""
        missing = [k for k in ("tiles", "encoder", "out") if getattr(self, k) in (None, "")]
        if missing:
            from wsi_ssl.config import ConfigError

            raise ConfigError(f"missing {', '.join(missing)}: give --{' --'.join(missing)} (or set them in the config)")
        assert self.tiles is not None and self.encoder is not None and self.out is not None
        return self.tiles, self.encoder, self.out
