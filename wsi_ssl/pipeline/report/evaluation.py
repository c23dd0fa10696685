"""The report's evaluation section: ``wsi-ssl evaluate`` of the run's encoders, when the pipeline
names an evaluation dataset; built from ``RUN/evaluation/`` files, like every section.
"""

from __future__ import annotations

from wsi_ssl.pipeline.layout import Run
from wsi_ssl.pipeline.report.render import Section


def evaluation_section(p: Run) -> Section:
    from wsi_ssl.evaluate.outputs import load_runs
    from wsi_ssl.evaluate.report import section_body

    out = p.layout.root / "evaluation"
    if getattr(p.cfg, "evaluation", None) is None:
        body = '<p class="note">No evaluation dataset named (add <code>evaluation:</code> to the pipeline file).</p>'
    else:
        plots = out / "plots"
        figures = {f.stem: f for f in sorted(plots.glob("*.png"))} if plots.is_dir() else {}
        body = section_body(load_runs(out), figures) if (out / "runs").is_dir() else '<p class="note">Not run yet.</p>'
    return Section("evaluation", "Patch-level evaluation", body)
