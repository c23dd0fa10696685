"""End to end: a tiny quickstart stopped after tiling resumes at pretraining; a rerun skips all."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import h5py
import pandas as pd

from wsi_ssl.stores.encoder_dir import read_encoder_config

if TYPE_CHECKING:
    from conftest import TinyRuns


def _stage_lines(output: str) -> dict[str, str]:
    """``{stage: "running" | "complete"}`` from the ``[pipeline] NAME: ...`` lines."""
    found = {}
    for m in re.finditer(r"^\[pipeline\] (\w+): (running|complete)", output, re.M):
        found[m.group(1)] = m.group(2)
    return found


def test_stop_after_tile_runs_only_cohort_and_tile(tiny_runs: TinyRuns) -> None:
    assert tiny_runs.stopped_rc == 0, tiny_runs.stopped
    assert _stage_lines(tiny_runs.stopped) == {"cohort": "running", "tile": "running"}
    assert "stopped after tile" in tiny_runs.stopped


def test_resumed_run_starts_at_pretraining(tiny_runs: TinyRuns) -> None:
    assert tiny_runs.resumed_rc == 0, tiny_runs.resumed
    stages = _stage_lines(tiny_runs.resumed)
    assert stages["cohort"] == stages["tile"] == "complete"
    assert all(stages[s] == "running" for s in ("pretrain", "encoders", "embed", "mil"))


def test_second_run_skips_every_stage(tiny_runs: TinyRuns) -> None:
    assert tiny_runs.rerun_rc == 0, tiny_runs.rerun
    stages = _stage_lines(tiny_runs.rerun)
    assert set(stages) == {"cohort", "tile", "pretrain", "encoders", "embed", "mil", "evaluate"}
    assert set(stages.values()) == {"complete"}
    assert "0 stage(s) ran" in tiny_runs.rerun


def test_outputs_follow_the_contracts(tiny_runs: TinyRuns) -> None:
    root = tiny_runs.root
    table = pd.read_csv(root / "slides.csv")
    assert len(table) >= 4
    pretrained, random = (
        read_encoder_config(root / "encoders/pretrained"),
        read_encoder_config(root / "encoders/random"),
    )
    assert pretrained.method == "dino" and random.method == "random"
    assert (pretrained.arch, pretrained.model_kwargs, pretrained.input_size) == (
        random.arch,
        random.model_kwargs,
        random.input_size,
    )
    assert pretrained.sha256 != random.sha256
    for kind in ("pretrained", "random"):
        for sid in table["slide_id"]:
            with h5py.File(root / "features" / kind / f"{sid}.h5") as f:
                assert f["features"].shape[1] == pretrained.embed_dim
        for task, metric in (("biomarker", "auroc"), ("survival", "c_index")):
            metrics = json.loads((root / "mil" / kind / task / "metrics.json").read_text())
            assert metric in metrics["oof"]


def test_last_lines_are_the_headline_figures(tiny_runs: TinyRuns) -> None:
    for output in (tiny_runs.resumed, tiny_runs.rerun):
        last = output.strip().splitlines()[-2:]
        assert last[0].startswith("biomarker AUROC") and last[1].startswith("survival C-index"), last
        for line in last:
            assert re.search(r"pretrained \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \| random \d\.\d{3}", line), line
    summary = json.loads((tiny_runs.root / "summary.json").read_text())
    auroc = summary["headline"][0]["pretrained"]["value"]
    metrics = json.loads((tiny_runs.root / "mil/pretrained/biomarker/metrics.json").read_text())
    assert auroc == metrics["oof"]["auroc"]["value"]  # the printed figure is the stage's own


def test_report_is_self_contained_with_every_section(tiny_runs: TinyRuns) -> None:
    from wsi_ssl.pipeline.report import SECTION_IDS

    html = (tiny_runs.root / "report.html").read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html
    assert html.count("data:image/") >= 6  # QC thumbnails, curves, ROC, KM, heatmaps, comparison chart
    assert not re.search(r'(src|href)="(?!data:|#)', html), "everything must be inlined"
