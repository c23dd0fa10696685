"""Pipeline files are validated before any stage runs, with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wsi_ssl.config import ConfigError, parse_overrides
from wsi_ssl.pipeline.config import StageConfig, load_pipeline
from wsi_ssl.resources import packaged_path

PIPELINES = packaged_path("pipelines")


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return yaml.safe_load((PIPELINES / "quickstart.yaml").read_text())


def test_shipped_pipelines_validate(tmp_path: Path) -> None:
    quick = load_pipeline(PIPELINES / "quickstart.yaml")
    assert quick.cohort.demo is not None and set(quick.mil) == {"biomarker", "survival"}
    table = tmp_path / "slides.csv"
    table.write_text("slide_id,patient_id,path,biomarker,time,event\n")
    cohort = load_pipeline(PIPELINES / "cohort.yaml", [f"cohort.table={table}"], out=str(tmp_path / "run"))
    assert cohort.cohort.demo is None and cohort.out == str(tmp_path / "run")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = _base()
    data["pretrain"]["cofnig"] = "x.yaml"
    with pytest.raises(ConfigError, match=r"pretrain\.cofnig"):
        load_pipeline(_write(tmp_path, data))


def test_demo_and_own_table_are_exclusive(tmp_path: Path) -> None:
    data = _base()
    data["cohort"]["table"] = "slides.csv"
    with pytest.raises(ConfigError, match="cohort"):
        load_pipeline(_write(tmp_path, data))


def test_missing_stage_config_is_named(tmp_path: Path) -> None:
    data = _base()
    data["mil"]["survival"]["config"] = "configs/mil/no_such.yaml"
    with pytest.raises(ConfigError, match=r"mil\.survival\.config: file not found"):
        load_pipeline(_write(tmp_path, data))


def test_task_names_become_folders_so_must_be_plain(tmp_path: Path) -> None:
    data = _base()
    data["mil"]["../escape"] = data["mil"].pop("survival")
    with pytest.raises(ConfigError, match="task name"):
        load_pipeline(_write(tmp_path, data))


def test_stage_overrides_reach_the_stage_as_typed_values() -> None:
    stage = StageConfig(
        config="c.yaml",
        set={
            "mpp": 1.0,
            "tile_size": 64,
            "tissue.pen_hue_range": [65.0, 255.0],
            "task.label_column": "biomarker",
            "mpp_override": None,
        },
    )
    argv = stage.argv(Path("c.yaml"))
    assert argv[:2] == ["--config", "c.yaml"]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert parse_overrides(sets) == {
        "mpp": 1.0,
        "tile_size": 64,
        "tissue": {"pen_hue_range": [65.0, 255.0]},
        "task": {"label_column": "biomarker"},
        "mpp_override": None,
    }
