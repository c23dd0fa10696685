"""Chains the stages of a pipeline file and skips every stage whose outputs are already complete.

Each stage command skips its own finished work (a complete tile store, an h5 per slide, a
finished fold), so rerunning is always safe; the pipeline adds a cheaper, coarser rule on top:
a stage whose output *files* say it is complete is not started at all, so a second run of a
finished pipeline only rebuilds the report, and a run stopped anywhere resumes at the first
incomplete stage. Stages are called in-process through ``wsi_ssl.cli.main`` (torch is imported
once, not once per stage) with exactly the arguments a user would type, so a pipeline does
nothing a user could not do by hand. The run dir's layout is described in ``layout``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from wsi_ssl.pipeline import stages as st
from wsi_ssl.pipeline.config import PipelineConfig
from wsi_ssl.pipeline.layout import STAGES, PipelineError, PipelineResult, Run, StageRecord
from wsi_ssl.pipeline.report import build_report
from wsi_ssl.pipeline.report.headline import headline

log = logging.getLogger(__name__)


class Pipeline(Run):
    """One run of a validated pipeline config; ``run()`` goes stage by stage."""

    def __init__(self, cfg: PipelineConfig, printer: Callable[[str], None] = print) -> None:
        super().__init__(cfg)
        self.say = printer

    def run(self, stop_after: str | None = None, force: tuple[str, ...] = ()) -> PipelineResult:
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
        result.headline = headline(self)
        result.report = build_report(self, result)
        (self.layout.root / "summary.json").write_text(
            json.dumps(
                {"stages": [vars(s) for s in result.stages], "headline": result.headline, "report": str(result.report)},
                indent=2,
                default=float,
            )
        )
        return result

    def earlier_seconds(self) -> dict[str, float]:
        """Seconds each stage took when it last ran (from the previous summary.json), for the report."""
        path = self.layout.root / "summary.json"
        try:
            return {s["name"]: float(s["seconds"]) for s in json.loads(path.read_text())["stages"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}
