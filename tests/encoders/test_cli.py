"""``wsi-ssl encoders list|show`` and a preset on the embed command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from zoo_helpers import write_hf_snapshot

from wsi_ssl.cli import main
from wsi_ssl.encoders.command import LIST_KEYS
from wsi_ssl.encoders.registry import get_preset, preset_names


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf" / "hub"


def test_list_json_has_exactly_the_documented_keys(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_hf_snapshot(cache, get_preset("lunit-vits8").repo_id, {"model.safetensors": {"w": torch.zeros(1)}})
    assert main(["encoders", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == preset_names()
    assert all(tuple(r) == LIST_KEYS for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["lunit-vits8"]["weights_found"] is True and by_name["uni2-h"]["weights_found"] is False
    assert by_name["uni2-h"]["gated"] is True and by_name["uni2-h"]["embed_dim"] == 1536
    assert by_name["virchow2"]["mpp"] == 0.5 and by_name["dinov2-vits14"]["mpp"] is None
    assert by_name["conch-v1.5"]["input_size"] == 448
    assert by_name["uni2-h"]["source"].startswith("hf://MahmoodLab/UNI2-h@")


def test_list_table_and_show(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["name", "embed_dim", "params"] and len(table) == len(preset_names()) + 1
    assert main(["encoders", "show", "virchow2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["pooling"] == "cls+mean_patch" and record["kwargs"]["reg_tokens"] == 4
    assert "632 million" in record["sources"]["params"]
    assert "hf download paige-ai/Virchow2" in record["weights"]["missing"]
    assert main(["encoders", "show", "virchow3"]) == 2
    assert "known presets" in capsys.readouterr().err


def test_embed_with_a_preset_whose_weights_are_missing_exits_2(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["embed", "--tiles", str(tmp_path), "--encoder", "uni2-h", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "MahmoodLab/UNI2-h" in err and "gated" in err and "hf download" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
