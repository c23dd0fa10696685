"""The pipeline's ``evaluate`` stage: ``wsi-ssl evaluate`` of the pipeline's encoders, when a
pipeline names an evaluation dataset (``evaluation:`` in the pipeline file).

``evaluation.dataset: demo`` (with a generated cohort) writes the demo cohort's labelled patch set
(``wsi_ssl.synthetic.patches``: its tissue classes, two sites stained differently) into
``RUN/evaluation/patches`` and evaluates on it; any other kind reads ``evaluation.data``. The
stage is complete when ``RUN/evaluation/results.json`` lists every encoder of the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from wsi_ssl.pipeline.call import call_stage
from wsi_ssl.pipeline.config import DEMO_EVALUATION as DEMO
from wsi_ssl.pipeline.config import EvaluationStage  # re-exported: the stage's config

__all__ = ["EvaluationStage", "check_evaluation", "run_evaluation"]

if TYPE_CHECKING:
    from wsi_ssl.pipeline.layout import Run


def _out(p: Run) -> Path:
    return p.layout.root / "evaluation"


def check_evaluation(p: Run) -> tuple[bool, str]:
    stage = getattr(p.cfg, "evaluation", None)
    if stage is None:
        return True, "no evaluation dataset named"
    results = _out(p) / "results.json"
    if not results.is_file():
        return False, "no results.json yet"
    have = set(json.loads(results.read_text()).get("encoders", []))
    return have >= set(p.kinds), f"encoders evaluated: {', '.join(sorted(have)) or 'none'}"


def run_evaluation(p: Run) -> None:
    stage = p.cfg.evaluation
    if stage is None:
        return
    out = _out(p)
    data, mpp, kind = stage.data, stage.mpp, stage.dataset
    if kind == DEMO:
        from wsi_ssl.synthetic.patches import make_patch_set

        table = out / "patches" / "patches.csv"
        if not table.is_file():
            make_patch_set(out / "patches", stage.demo_patches_per_class, stage.demo_size, stage.demo_mpp)
        data, mpp, kind = str(table), stage.demo_mpp, "csv"
    argv = ["evaluate", "--dataset", kind, "--data", str(data), "--out", str(out)]
    for k in p.kinds:
        argv += ["--encoder", str(p.layout.encoder_spec(k))]
    if mpp:
        argv += ["--mpp", str(mpp)]
    call_stage([*argv, *stage.argv(p.config_path(stage)), "--no-progress"], "wsi-ssl evaluate")
