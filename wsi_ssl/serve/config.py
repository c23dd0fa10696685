"""The typed config of ``wsi-ssl serve``: which caches, encoder and models to serve, and to whom.

Validated before the server binds a port, so a typo in ``configs/serve/default.yaml`` stops the
command with a message naming the key instead of surfacing as a 500 on the first request.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from wsi_ssl.config import StrictModel

# The OpenAPI document is checked into the repo, so it must not depend on a deployment's
# config: the schema advertises these hard caps, and the config may only lower them.
MAX_PAGE_LIMIT = 1000
MAX_TILES_CAP = 512
# A slide id names the file ``<slide_id>.h5``; a file name holds at most 255 bytes (NAME_MAX on
# Linux, macOS and Windows), so the longest id the store can hold is 255 - len(".h5") = 252.
MAX_SLIDE_ID = 252

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME_RE = re.compile(NAME_PATTERN)


def check_name(value: str, what: str) -> str:
    """Cohort and model names appear in URLs and key scopes; keep them to a safe alphabet."""
    if not _NAME_RE.match(value):
        raise ValueError(f"{what} {value!r} must be 1-128 characters of letters, digits, '.', '_' or '-'")
    return value


class LimitsConfig(StrictModel):
    """Bounds that keep one request from taking the server down for everyone else."""

    max_page_size: int = Field(1000, ge=1, le=MAX_PAGE_LIMIT)
    default_page_size: int = Field(100, ge=1, le=MAX_PAGE_LIMIT)
    max_tiles_per_request: int = Field(64, ge=1, le=MAX_TILES_CAP)
    max_image_bytes: int = Field(1024 * 1024, ge=1024)
    max_image_pixels: int = Field(1024 * 1024, ge=64)
    # Uploads are tiles: an image may be at most this many times the encoder's input size on a
    # side (a 256-pixel tile for a 224-pixel encoder is fine, a 4096x4096 image is not).
    max_image_scale: float = Field(2.0, ge=1.0, le=16.0)
    # Decoded pixels of one upload request in all (checked from the image headers, before decoding).
    max_request_pixels: int = Field(64 * 512 * 512, ge=64)
    # The upload (multipart) body, counted as it streams in, whatever Content-Length says.
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    # Every other body (a predict body is a model name): parsing a big JSON body would hold the
    # event loop, so it is refused unread.
    max_json_bytes: int = Field(4096, ge=256, le=1024 * 1024)

    @model_validator(mode="after")
    def _default_within_max(self) -> LimitsConfig:
        if self.default_page_size > self.max_page_size:
            raise ValueError(
                f"default_page_size ({self.default_page_size}) must not exceed max_page_size ({self.max_page_size})"
            )
        return self


class EncoderSection(StrictModel):
    """The encoder used by the embed endpoint: an encoder dir (Contract 2), a zoo preset (weights from the
    Hugging Face cache, or ``weights``), or a timm name + weights."""

    path: str
    weights: str | None = None
    device: str = "cpu"
    batch_size: int = Field(32, ge=1, le=1024)


class ModelSpec(StrictModel):
    """A model entry that names a loader plugin (``package.module:function``) for its path."""

    path: Path
    loader: str | None = None


class ServeConfig(StrictModel):
    """Everything ``wsi-ssl serve`` needs; see ``configs/serve/default.yaml`` for a commented copy."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    cohorts: dict[str, Path] = Field(default_factory=dict)
    keys_file: Path = Path("serve_keys.json")
    access_log: Path | None = Path("serve_access.log")
    # The access log is rotated when it would pass this size, keeping this many old files.
    access_log_max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    access_log_backups: int = Field(5, ge=0, le=1000)
    encoder: EncoderSection | None = None
    # name -> TorchScript file/folder, or {path, loader: "module:function"} (see serve/models.py)
    models: dict[str, Path | ModelSpec] = Field(default_factory=dict)
    # Name of a loaded model whose ``embedding`` output is served as the slide's aggregator
    # embedding; None means the first model that returns an ``embedding`` output, if any.
    embedding_model: str | None = None
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    open_files: int = Field(64, ge=1, le=4096)
    # Read tile pages from memory-mapped feature files (3x faster pages; serve/feature_rows.py).
    # Needs files replaced by rename (wsi-ssl embed does so): a file truncated in place while a
    # page is being copied from its mapping would crash the server (docs/serve.md, Feature caches).
    mmap_features: bool = True

    @field_validator("cohorts")
    @classmethod
    def _cohort_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            check_name(name, "cohort name")
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, Path | ModelSpec]) -> dict[str, Path | ModelSpec]:
        for name in value:
            check_name(name, "model name")
        return value

    @model_validator(mode="after")
    def _embedding_model_known(self) -> ServeConfig:
        if self.embedding_model is not None and self.embedding_model not in self.models:
            raise ValueError(
                f"embedding_model {self.embedding_model!r} is not one of the configured models {sorted(self.models)}"
            )
        return self
