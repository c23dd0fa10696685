"""The shipped configs validate, and bad keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsi_ssl.config import ConfigError, load_config
from wsi_ssl.pretrain.config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_validate(name: str) -> None:
    import torch

    from wsi_ssl.pretrain.heads import build_backbone

    cfg = load_config(PretrainConfig, CONFIGS / f"{name}.yaml")
    with torch.device("meta"):  # the architecture alone, at no cost (continue_dinov2 names a preset)
        backbone = build_backbone(cfg.backbone, load_weights=False)
    assert cfg.crops.global_size % backbone.patch_embed.patch_size[0] == 0


def test_unknown_and_out_of_range_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="dino.teacher_tmp"):
        load_config(PretrainConfig, CONFIGS / "tiny_cpu.yaml", {"dino": {"teacher_tmp": 0.1}})
    with pytest.raises(ConfigError, match="trainer.strategy"):
        load_config(PretrainConfig, CONFIGS / "tiny_cpu.yaml", {"trainer": {"strategy": "horovod"}})
