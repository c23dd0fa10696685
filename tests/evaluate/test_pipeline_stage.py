"""The pipeline's evaluate stage and report section (a pipeline that names an evaluation dataset)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wsi_ssl.pipeline.config import load_pipeline
from wsi_ssl.pipeline.layout import Run
from wsi_ssl.pipeline.report.evaluation import evaluation_section
from wsi_ssl.pipeline.stages import CHECKS, RUNS


def test_demo_evaluation_stage(tmp_path: Path, encoders: list[Path]) -> None:
    fast = {
        "linear.max_steps": 100, "linear.min_check_steps": 10, "fewshot.shots": [1],
        "robustness.shifts": ["hed_strong"], "seeds": [0], "protocols": ["linear"],
    }  # fmt: skip
    overrides = [f"evaluation.set.{k}={v}".replace("'", '"') for k, v in fast.items()]
    overrides += ["evaluation.dataset=demo", "evaluation.demo_patches_per_class=5", "evaluation.demo_size=32"]
    cfg = load_pipeline("pipelines/quickstart.yaml", overrides, out=str(tmp_path / "run"))
    p = Run(cfg)
    for kind, enc in zip(p.kinds, encoders, strict=True):  # stand-ins for the pretrained and random encoders
        shutil.copytree(enc, p.layout.encoder(kind))
    assert CHECKS["evaluate"](p)[0] is False
    RUNS["evaluate"](p)
    done, why = CHECKS["evaluate"](p)
    assert done, why
    section = evaluation_section(p)
    assert "pretrained" in section.body and "random" in section.body and "hed_strong" in section.body
    assert "Robustness index" in section.body  # the demo set has two sites


def test_no_evaluation_named(tmp_path: Path) -> None:
    p = Run(load_pipeline("pipelines/quickstart.yaml", out=str(tmp_path / "run")))
    assert CHECKS["evaluate"](p) == (True, "no evaluation dataset named")
    assert "No evaluation dataset named" in evaluation_section(p).body
