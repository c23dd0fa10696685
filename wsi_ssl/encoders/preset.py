"""One public encoder as data: where its weights live, how to build it, and how to feed and pool it.

A preset is declarative on purpose: every number is written down once, with the place it was
read from in ``sources``, so a reviewer can check it against the model card without running
anything. Builders (``builders.py``) turn it into a model; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from wsi_ssl.encoders.pooling import WIDTH_FACTOR

Builder = Literal["timm", "transformers", "module"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderPreset:
    """A named public tile encoder (see ``wsi-ssl encoders show NAME``)."""

    name: str
    repo_id: str  # Hugging Face repository holding the weights
    license: str
    gated: bool  # a licence or terms must be accepted on the Hub before download
    builder: Builder
    arch: str  # timm architecture, or the transformers model class (ViTModel, Dinov2Model ...)
    embed_dim: int  # width of the pooled embedding
    params: int  # parameter count published on the model card or in the paper
    mpp: float | None  # microns per pixel of the tiles it was trained on (None: natural images)
    pooling: str  # a name in pooling.POOLINGS
    sources: dict[str, str]  # field -> where the value was read (URL or repo:path)
    revision: str | None = None  # pinned commit of the Hub repo; None = whatever the cache's main is
    kwargs: dict[str, Any] = field(default_factory=dict)  # timm.create_model kwargs, or the transformers config
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    weights_files: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")  # in order of preference
    checkpoint_filter: str | None = None  # name in builders.CHECKPOINT_FILTERS for an upstream key layout
    # For a transformers preset: the timm model of the same computation, {"arch", "kwargs",
    # "checkpoint_filter"}, which continued pretraining trains (see convert.py).
    timm_equivalent: dict[str, Any] | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.pooling not in WIDTH_FACTOR:
            raise ValueError(f"preset {self.name}: unknown pooling {self.pooling!r}")
        missing = {"params", "embed_dim", "mpp", "pooling", "mean_std"} - set(self.sources)
        if missing:
            raise ValueError(f"preset {self.name}: no source written for {sorted(missing)}")

    def as_timm(self) -> EncoderPreset:
        """This preset as a timm model (itself, or its ``timm_equivalent``); ValueError if there is none."""
        from dataclasses import replace

        if self.builder == "timm":
            return self
        if self.timm_equivalent is None:
            raise ValueError(f"{self.name} ({self.builder}) has no timm equivalent")
        eq = self.timm_equivalent
        return replace(
            self,
            builder="timm",
            arch=eq["arch"],
            kwargs=dict(eq["kwargs"]),
            checkpoint_filter=eq.get("checkpoint_filter"),
            timm_equivalent=None,
        )

    @property
    def hf_download_command(self) -> str:
        rev = f" --revision {self.revision}" if self.revision else ""
        return f"hf download {self.repo_id}{rev}"

    def summary(self) -> dict[str, Any]:
        """The row of ``wsi-ssl encoders list`` (without ``weights_found``, which needs a look at disk)."""
        return {
            "name": self.name,
            "embed_dim": self.embed_dim,
            "params": self.params,
            "mpp": self.mpp,
            "input_size": self.input_size,
            "license": self.license,
            "gated": self.gated,
            "source": f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else ""),
        }
