"""Typed config of ``wsi-ssl run PIPELINE.yaml``: which cohort, which stage configs, where to write.

A pipeline file names one stage config per stage (the same YAML files the stage commands take)
plus a few per-stage overrides, so the pipeline never duplicates a stage's settings: what a
stage does is always what its own config says. Validated before any stage starts, like every
config here, so a typo in ``pipelines/*.yaml`` stops the run with a message naming the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from wsi_ssl.config import ConfigError, StrictModel, load_config, parse_overrides
from wsi_ssl.resources import resolve_config_path


class DemoCohort(StrictModel):
    """Arguments of ``wsi-ssl demo-cohort``: the generated cohort with planted signal."""

    slides: int = Field(40, ge=4)
    seed: int = 0
    width: int = Field(4096, ge=256)
    height: int = Field(3072, ge=256)
    mpp: float = Field(0.5, gt=0)
    slides_per_patient: int = Field(1, ge=1)
    workers: int = Field(2, ge=1)


class CohortConfig(StrictModel):
    """Either ``demo`` (generate) or a user's ``slides`` (files/folders/CSV) and slide ``table``."""

    demo: DemoCohort | None = None
    slides: list[str] = Field(default_factory=list)
    table: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CohortConfig:
        if self.demo is None and not self.table:
            raise ValueError("give cohort.demo (a generated cohort) or cohort.table (your slide table CSV)")
        if self.demo is not None and (self.table or self.slides):
            raise ValueError("cohort.demo generates its own slides and table: leave cohort.slides/table out")
        return self


class StageConfig(StrictModel):
    """One stage: its own YAML config plus overrides (``key: value``, as ``--set key=value``)."""

    config: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)

    def argv(self, config_path: Path | None) -> list[str]:
        """``--config PATH --set k=v ...`` for the stage command."""
        out = ["--config", str(config_path)] if config_path else []
        for key, value in self.set.items():
            out += ["--set", f"{key}={json.dumps(value)}"]  # JSON is YAML: parse_overrides reads it back
        return out


class PretrainStage(StageConfig):
    """Pretraining; or ``encoder``: an existing encoder dir or a zoo preset used instead (no pretraining)."""

    encoder: str | None = None

    @model_validator(mode="after")
    def _config_or_encoder(self) -> PretrainStage:
        if not self.config and not self.encoder:
            raise ValueError("pretrain needs a config (configs/pretrain/*.yaml) or an existing encoder dir")
        return self


DEMO_EVALUATION = "demo"  # `evaluation.dataset: demo`: the demo cohort's labelled patch set


class EvaluationStage(StageConfig):
    """``evaluation:`` of a pipeline file: a dataset kind of ``wsi-ssl evaluate``, or ``demo``."""

    dataset: str = DEMO_EVALUATION
    data: str | None = None  # the dataset's folder (or CSV); not for demo
    mpp: float | None = Field(None, gt=0)
    demo_patches_per_class: int = Field(40, ge=4)  # per class and site
    demo_size: int = Field(64, ge=16)  # px, at demo_mpp (the quickstart's tiles: 64 px at 1.0 um/px)
    demo_mpp: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _data(self) -> EvaluationStage:
        if self.dataset != DEMO_EVALUATION and not self.data:
            raise ValueError(f"evaluation.data: give the folder of the {self.dataset} dataset")
        return self


class ReportConfig(StrictModel):
    """What ``report.html`` shows (every image is inlined, so these bound its size)."""

    thumbnails: int = Field(12, ge=0)  # QC thumbnails shown in the cohort section
    thumbnail_px: int = Field(360, ge=64)  # longest edge of an inlined QC thumbnail
    heatmaps: int = Field(4, ge=0)  # attention heatmaps (with top tiles) per task
    fold_bootstrap: int = Field(200, ge=0)  # resamples for the per-fold confidence intervals


class PipelineConfig(StrictModel):
    """The whole pipeline; ``out`` is the run dir every stage writes under."""

    out: str
    cohort: CohortConfig
    tile: StageConfig = StageConfig(config="configs/tile/default.yaml")
    pretrain: PretrainStage
    baseline: bool = True  # also embed and MIL-train a randomly initialised encoder of the same architecture
    embed: StageConfig = StageConfig(config="configs/embed/default.yaml")
    mil: dict[str, StageConfig]  # task name (a folder name) -> its MIL config
    report: ReportConfig = ReportConfig()
    evaluation: EvaluationStage | None = None  # `wsi-ssl evaluate` of the encoders (wsi_ssl/evaluate/pipeline_stage.py)
    min_slides: int = Field(4, ge=2)  # fewer tiled slides than this stops the run (MIL needs folds)

    @model_validator(mode="after")
    def _tasks(self) -> PipelineConfig:
        if not self.mil:
            raise ValueError("mil: name at least one task, e.g. biomarker: {config: configs/mil/abmil_biomarker.yaml}")
        for name in self.mil:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"mil: task name {name!r} must be letters, digits, - or _ (it names a folder)")
        return self


def resolve_path(value: str | None) -> Path | None:
    """A path from a pipeline file: absolute, relative to the current directory, else shipped.

    ``configs/tile/default.yaml`` is found in the installed package (``wsi_ssl.resources``) from
    any directory, while a user's own relative paths mean what they mean in their shell.
    """
    if not value:
        return None
    path = resolve_config_path(value)
    return path.resolve() if path.exists() else path


def load_pipeline(path: str | Path, overrides: list[str] | None = None, out: str | None = None) -> PipelineConfig:
    """Validate a pipeline file (plus ``--set`` overrides and ``--out``) and check its config files exist."""
    cfg = load_config(PipelineConfig, path, parse_overrides(overrides), {"out": out})
    missing = []
    stages: list[tuple[str, StageConfig]] = [("tile", cfg.tile), ("pretrain", cfg.pretrain), ("embed", cfg.embed)]
    stages += [(f"mil.{name}", stage) for name, stage in cfg.mil.items()]
    for key, stage in stages:
        p = resolve_path(stage.config)
        if stage.config and (p is None or not p.is_file()):
            missing.append(f"  {key}.config: file not found: {stage.config}")
    if cfg.cohort.table and not Path(cfg.cohort.table).expanduser().is_file():
        missing.append(f"  cohort.table: file not found: {cfg.cohort.table}")
    if cfg.pretrain.encoder and not _is_encoder(cfg.pretrain.encoder):
        missing.append(
            f"  pretrain.encoder: not an encoder dir (no config.json) nor a preset "
            f"(wsi-ssl encoders list): {cfg.pretrain.encoder}"
        )
    if missing:
        raise ConfigError(f"invalid pipeline ({path}):\n" + "\n".join(missing))
    return cfg


def _is_encoder(spec: str) -> bool:
    from wsi_ssl.encoders.registry import is_preset

    return is_preset(spec) or (Path(spec).expanduser() / "config.json").is_file()


PipelineConfig.model_rebuild()
