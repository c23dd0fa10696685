"""``report.html``: one self-contained page per pipeline run (see ``render`` for why self-contained).

Sections: the headline comparison (pretrained vs random encoder), the cohort, pretraining, the
slide-level models, attention heatmaps, "does the slide add to clinical data?" and the
patch-level evaluation of the encoders (`wsi-ssl evaluate`). Built only from the run dir's files, so it can be
rebuilt at any time (``build_report`` is also what a finished rerun of the pipeline does).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from wsi_ssl import __version__
from wsi_ssl.pipeline.layout import PipelineResult, Run
from wsi_ssl.pipeline.report.headline import headline

REPORT_NAME = "report.html"
SECTION_IDS = ("comparison", "cohort", "pretraining", "slide-models", "heatmaps", "clinical", "evaluation")


def build_report(pipe: Run, result: PipelineResult | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` (atomically) and return its path."""
    from wsi_ssl.pipeline.report.render import page
    from wsi_ssl.pipeline.report.sections import (
        cohort_section,
        comparison_section,
        extra_sections,
        heatmaps_section,
        models_section,
        pretraining_section,
    )
    from wsi_ssl.stores.atomic import atomic_output

    rows: list[dict[str, Any]] = result.headline if result and result.headline else headline(pipe)
    sections = [
        comparison_section(pipe, rows, result.stages if result else None),
        cohort_section(pipe),
        pretraining_section(pipe),
        models_section(pipe),
        heatmaps_section(pipe),
        *(section(pipe) for section in extra_sections()),
    ]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"run dir {pipe.layout.root} · tasks: {', '.join(pipe.cfg.mil)} · encoders: {', '.join(pipe.kinds)}"
    html = page("wsi_ssl pipeline report", subtitle, sections, f"wsi_ssl {__version__}, written {stamp}")
    out = pipe.layout.root / REPORT_NAME
    with atomic_output(out) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    return out
