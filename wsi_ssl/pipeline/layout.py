"""Where a pipeline run keeps everything, and the run that the stages and the report read.

The bottom of ``wsi_ssl.pipeline``: the stage checks (``stages``), the report (``report``) and the
runner all take a :class:`Run`, so none of them imports another to learn where a file is, and the
package has no import loop (``runner`` -> ``stages``/``report`` -> ``layout`` -> ``config``).

Run dir layout (``out`` of the pipeline file)::

    cohort/           the generated demo cohort (slides/, slides.csv); absent for a user cohort
    tiles/            tile stores, manifest.csv, qc/            (wsi-ssl tile)
    pretrain/         checkpoints, metrics, curves, summary.json (wsi-ssl pretrain)
    encoders/<kind>/  pretrained (wsi-ssl export) and random (same architecture, untrained)
    features/<kind>/  one h5 per slide                          (wsi-ssl embed)
    mil/<kind>/<task>/ models, predictions, metrics.json, plots (wsi-ssl mil train)
    slides.csv        the cohort's slide table, restricted to the slides that were tiled
    report.html       everything above on one page; summary.json the headline figures
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wsi_ssl.pipeline.config import PipelineConfig, StageConfig, resolve_path

STAGES = ("cohort", "tile", "pretrain", "encoders", "embed", "mil", "evaluate")


class PipelineError(RuntimeError):
    """A stage failed or left outputs the next stage cannot use; the message says which and why."""


@dataclass
class Layout:
    """Where each stage writes inside the run dir (one place, so checks and calls agree)."""

    root: Path
    encoder_override: Path | None = None  # pipeline.pretrain.encoder: an existing encoder dir
    encoder_preset: str | None = None  # pipeline.pretrain.encoder: a zoo preset (wsi-ssl encoders list)

    @property
    def cohort(self) -> Path:
        return self.root / "cohort"

    @property
    def tiles(self) -> Path:
        return self.root / "tiles"

    @property
    def pretrain(self) -> Path:
        return self.root / "pretrain"

    @property
    def table(self) -> Path:
        return self.root / "slides.csv"

    def encoder(self, kind: str) -> Path:
        if kind == "pretrained" and self.encoder_override is not None:
            return self.encoder_override
        return self.root / "encoders" / kind

    def encoder_spec(self, kind: str) -> str:
        """What ``--encoder`` gets for this kind: a preset name, or an encoder dir."""
        if kind == "pretrained" and self.encoder_preset is not None:
            return self.encoder_preset
        return str(self.encoder(kind))

    def features(self, kind: str) -> Path:
        return self.root / "features" / kind

    def mil(self, kind: str, task: str) -> Path:
        return self.root / "mil" / kind / task


@dataclass
class StageRecord:
    """What one stage did in a run (the report's "This run" table and ``summary.json``)."""

    name: str
    status: str  # ran | skipped
    seconds: float = 0.0
    note: str = ""


@dataclass
class PipelineResult:
    root: Path
    stages: list[StageRecord] = field(default_factory=list)
    headline: list[dict[str, object]] = field(default_factory=list)
    report: Path | None = None
    stopped_after: str | None = None


class Run:
    """A validated pipeline config applied to its run dir: its layout, encoder kinds and inputs."""

    def __init__(self, cfg: PipelineConfig) -> None:
        from wsi_ssl.encoders.load import encoder_kind

        self.cfg = cfg
        spec = cfg.pretrain.encoder
        preset = spec if spec and encoder_kind(spec) == "preset" else None
        enc = Path(spec).expanduser().resolve() if spec and preset is None else None
        self.layout = Layout(Path(cfg.out).expanduser().resolve(), enc, preset)
        self.kinds = ["pretrained"] + (["random"] if cfg.baseline else [])

    def config_path(self, stage: StageConfig) -> Path | None:
        return resolve_path(stage.config)

    def cohort_table(self) -> Path:
        if self.cfg.cohort.demo is not None:
            return self.layout.cohort / "slides.csv"
        return Path(self.cfg.cohort.table or "").expanduser().resolve()
