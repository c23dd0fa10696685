"""Chains the stages of a pipeline file and skips every stage whose outputs are already complete.

Each stage command skips its own finished work (a complete tile store, an h5 per slide, a
finished fold), so rerunning is always safe; the pipeline adds a cheaper, coarser rule on top:
a stage whose output *files* say it is complete is not started at all, so a second run of a
finished pipeline only rebuilds the report, and a run stopped anywhere resumes at the first
incomplete stage. Stages are called in-process through ``wsi_ssl.cli.main`` (torch is imported
once, not once per stage) with exactly the arguments a user would type, so a pipeline does
nothing a user could not do by hand. Run dir layout (``out`` of the pipeline file)::

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

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wsi_ssl.pipeline_config import REPO_ROOT, PipelineConfig, StageConfig, resolve_path

log = logging.getLogger(__name__)
STAGES = ("cohort", "tile", "pretrain", "encoders", "embed", "mil")
HEADLINE = {"classification": ("auroc", "AUROC"), "survival": ("c_index", "C-index"), "regression": ("r2", "R2")}


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


def read_ids(table: Path) -> list[str]:
    with open(table, newline="") as fh:
        return [row["slide_id"] for row in csv.DictReader(fh) if row.get("slide_id")]


def call_stage(argv: list[str], what: str, ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run one ``wsi-ssl`` command in this process; a bad exit code stops the pipeline."""
    from wsi_ssl.cli import main

    log.info("wsi-ssl %s", " ".join(argv))
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors and stages that exit with a message
        rc = exc.code if isinstance(exc.code, int) else 1
    if rc not in ok_codes:
        raise PipelineError(f"{what} failed (exit code {rc}); the messages above say why. "
                            "Fix it and rerun the same command: finished stages are skipped.")
    return rc


class Pipeline:
    """One run of a validated pipeline config; ``run()`` goes stage by stage."""

    def __init__(self, cfg: PipelineConfig, printer: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        from wsi_ssl.encoders.load import encoder_kind

        spec = cfg.pretrain.encoder
        preset = spec if spec and encoder_kind(spec) == "preset" else None
        enc = Path(spec).expanduser().resolve() if spec and preset is None else None
        self.layout = Layout(Path(cfg.out).expanduser().resolve(), enc, preset)
        self.kinds = ["pretrained"] + (["random"] if cfg.baseline else [])
        self.say = printer

    def config_path(self, stage: StageConfig) -> Path | None:
        return resolve_path(stage.config, REPO_ROOT)

    def cohort_table(self) -> Path:
        if self.cfg.cohort.demo is not None:
            return self.layout.cohort / "slides.csv"
        return Path(self.cfg.cohort.table or "").expanduser().resolve()

    def run(self, stop_after: str | None = None, force: tuple[str, ...] = ()) -> PipelineResult:
        from wsi_ssl import pipeline_stages as st

        if stop_after is not None and stop_after not in STAGES:
            raise PipelineError(f"--stop-after must be one of {', '.join(STAGES)}, got {stop_after!r}")
        self.layout.root.mkdir(parents=True, exist_ok=True)
        result = PipelineResult(self.layout.root)
        earlier = self.earlier_seconds()
        for name in STAGES:
            complete, why = st.CHECKS[name](self)
            if complete and name not in force:
                self.say(f"[pipeline] {name}: complete ({why}), skipped")
                result.stages.append(StageRecord(name, "skipped", earlier.get(name, 0.0), note=why))
            else:
                self.say(f"[pipeline] {name}: running ({why})")
                started = time.perf_counter()
                st.RUNS[name](self)
                done, after = st.CHECKS[name](self)
                if not done:
                    raise PipelineError(f"stage {name} finished but its outputs are incomplete: {after}")
                seconds = time.perf_counter() - started
                self.say(f"[pipeline] {name}: done in {seconds:.0f} s ({after})")
                result.stages.append(StageRecord(name, "ran", seconds, after))
            if name == "tile":
                st.write_tiled_table(self)
            if name == stop_after:
                result.stopped_after = name
                self.say(f"[pipeline] stopped after {name} as asked; rerun without --stop-after to go on")
                return result
        from wsi_ssl.report import build_report

        result.headline = headline(self)
        result.report = build_report(self, result)
        (self.layout.root / "summary.json").write_text(json.dumps({
            "stages": [vars(s) for s in result.stages], "headline": result.headline,
            "report": str(result.report)}, indent=2, default=float))
        return result


    def earlier_seconds(self) -> dict[str, float]:
        """Seconds each stage took when it last ran (from the previous summary.json), for the report."""
        path = self.layout.root / "summary.json"
        try:
            return {s["name"]: float(s["seconds"]) for s in json.loads(path.read_text())["stages"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}


def headline(pipe: Pipeline) -> list[dict[str, object]]:
    """Per task, the main out-of-fold metric with its CI for each encoder kind (from metrics.json)."""
    rows: list[dict[str, object]] = []
    for task in pipe.cfg.mil:
        row: dict[str, object] = {"task": task}
        for kind in pipe.kinds:
            path = pipe.layout.mil(kind, task) / "metrics.json"
            metrics = json.loads(path.read_text())
            key, label = HEADLINE.get(metrics.get("task", ""), ("", ""))
            value = metrics.get("oof", {}).get(key)
            row["metric"], row["label"] = key, label
            row[kind] = value
        rows.append(row)
    return rows


def headline_lines(rows: list[dict[str, object]], kinds: list[str]) -> list[str]:
    """The run's last lines: e.g. ``biomarker AUROC: pretrained 0.95 [0.90, 0.99] | random 0.70 [...]``."""
    lines = []
    for row in rows:
        parts = []
        for kind in kinds:
            v = row.get(kind)
            if isinstance(v, dict):
                parts.append(f"{kind} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]")
            else:
                parts.append(f"{kind} n/a")
        lines.append(f"{row['task']} {row['label']} (out-of-fold, 95% CI): " + " | ".join(parts))
    return lines
