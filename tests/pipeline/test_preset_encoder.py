"""A zoo preset as the pipeline's encoder, and the random baseline of its architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from wsi_ssl.config import ConfigError
from wsi_ssl.encoders.registry import get_preset
from wsi_ssl.pipeline.config import load_pipeline
from wsi_ssl.pipeline.runner import Pipeline
from wsi_ssl.pipeline.stages import check_encoders, write_random_encoder
from wsi_ssl.resources import packaged_path


def _pipeline_file(tmp_path: Path, encoder: str) -> Path:
    data = yaml.safe_load(packaged_path("pipelines", "quickstart.yaml").read_text())
    data["pretrain"] = {"encoder": encoder}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_preset_name_is_a_valid_pipeline_encoder(tmp_path: Path) -> None:
    cfg = load_pipeline(_pipeline_file(tmp_path, "kaiko-vits16"), out=str(tmp_path / "run"))
    p = Pipeline(cfg, printer=lambda _: None)
    assert p.layout.encoder_spec("pretrained") == "kaiko-vits16"
    assert p.layout.encoder_spec("random") == str(tmp_path / "run" / "encoders" / "random")
    ok, _ = check_encoders(p)
    assert not ok  # the random baseline is still to be written
    with pytest.raises(ConfigError, match="nor a preset"):
        load_pipeline(_pipeline_file(tmp_path, "kaiko-vits17"))


@pytest.mark.parametrize("name", ["kaiko-vits16", "phikon"])
def test_random_baseline_of_a_preset_keeps_architecture_pooling_and_preprocessing(name: str, tmp_path: Path) -> None:
    from wsi_ssl.encoders.load import load_encoder

    preset = get_preset(name)
    write_random_encoder(name, tmp_path / "random")
    model, cfg = load_encoder(tmp_path / "random")
    assert (cfg.method, cfg.preset, cfg.builder, cfg.pooling) == ("random", "", preset.builder, preset.pooling)
    assert (cfg.mean, cfg.std, cfg.mpp, cfg.input_size) == (preset.mean, preset.std, preset.mpp, preset.input_size)
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, preset.embed_dim)
