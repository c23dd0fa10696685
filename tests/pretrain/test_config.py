"""The shipped configs validate, and bad keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsi_ssl.config import ConfigError, load_config
from wsi_ssl.pretrain.config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"


@pytest.mark.parametrize("name", ["tiny_cpu", "dino_vit_small", "mae_vit_base"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(PretrainConfig, CONFIGS / f"{name}.yaml")
    assert cfg.crops.global_size % int(cfg.backbone.kwargs.get("patch_size", 16)) == 0


def test_unknown_and_out_of_range_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="dino.teacher_tmp"):
        load_config(PretrainConfig, CONFIGS / "tiny_cpu.yaml", {"dino": {"teacher_tmp": 0.1}})
    with pytest.raises(ConfigError, match="trainer.strategy"):
        load_config(PretrainConfig, CONFIGS / "tiny_cpu.yaml", {"trainer": {"strategy": "horovod"}})
