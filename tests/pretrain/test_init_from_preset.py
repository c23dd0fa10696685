"""Continued pretraining from a zoo preset: ``backbone.init=NAME`` starts DINO from its weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import make_store, tiny_config
from zoo_helpers import write_hf_snapshot

from wsi_ssl.encoders.registry import get_preset
from wsi_ssl.pretrain.config import PretrainConfig


@pytest.fixture
def kaiko_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    import timm

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(3)
    state = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).state_dict()
    preset = get_preset("kaiko-vits16")
    write_hf_snapshot(
        tmp_path / "hf" / "hub", preset.repo_id, {"model.safetensors": state}, revision=preset.revision or "0" * 40
    )
    return state


def preset_config(**backbone: object) -> dict:
    cfg = tiny_config(
        "dino",
        optim={"lr": 1e-4, "warmup_steps": 1, "scale_lr_by_batch": False, "schedule": "infinite", "cooldown_steps": 1},
        trainer={"max_steps": 2, "ckpt_every": 1, "val_every": 2, "log_every": 1, "threads": 2},
    )
    cfg["backbone"] = {"init": "kaiko-vits16", "drop_path_rate": 0.0, **backbone}
    return cfg


def test_config_takes_the_presets_architecture_and_statistics() -> None:
    cfg = PretrainConfig.model_validate(preset_config())
    preset = get_preset("kaiko-vits16")
    assert cfg.backbone.arch == preset.arch and cfg.backbone.kwargs["img_size"] == 224
    assert cfg.augment.mean == preset.mean and cfg.augment.std == preset.std
    again = PretrainConfig.model_validate(cfg.model_dump(mode="json"))  # what a checkpoint re-validates
    assert again.backbone == cfg.backbone and again.augment == cfg.augment


def test_a_transformers_dinov2_preset_trains_as_its_timm_equivalent() -> None:
    cfg = PretrainConfig.model_validate({**preset_config(), "backbone": {"init": "phikon-v2"}})
    assert cfg.backbone.arch == "vit_large_patch16_224" and cfg.backbone.kwargs["init_values"] == 1e-5
    assert cfg.augment.mean == get_preset("phikon-v2").mean


@pytest.mark.parametrize(
    "backbone, message",
    [
        ({"init": "no-such-model"}, "no encoder preset 'no-such-model'"),
        ({"init": "phikon"}, "no timm equivalent"),
        ({"init": "kaiko-vits16", "arch": "vit_base_patch16_224"}, "contradicts backbone.init"),
    ],
)
def test_bad_init_is_a_config_error(backbone: dict, message: str) -> None:
    cfg = preset_config()
    cfg["backbone"] = backbone
    with pytest.raises(ValueError, match=message):
        PretrainConfig.model_validate(cfg)


def test_dino_starts_from_the_preset_weights_and_export_records_it(kaiko_cache, tmp_path: Path) -> None:
    from wsi_ssl.encoders.load import load_encoder
    from wsi_ssl.pretrain.export import export_encoder
    from wsi_ssl.pretrain.module import PretrainModule
    from wsi_ssl.pretrain.run import run_pretrain

    cfg = PretrainConfig.model_validate(preset_config())
    module = PretrainModule(cfg.model_dump(mode="json"), tile_mpp=0.5)
    for key, value in kaiko_cache.items():  # student and teacher both start at the published weights
        assert torch.equal(module.student.state_dict()[key], value)
        assert torch.equal(module.teacher.state_dict()[key], value)

    for i in range(2):
        make_store(tmp_path / "tiles", f"s{i}", n=12, size=32, seed=i, mpp=0.5)
    run = run_pretrain(cfg, [str(tmp_path / "tiles")], tmp_path / "run")
    enc = export_encoder(run, tmp_path / "encoder", name="continued")
    preset = get_preset("kaiko-vits16")
    assert enc.init_from.startswith(f"kaiko-vits16@{preset.revision} (sha256 ")
    assert enc.arch == preset.arch and enc.mean == preset.mean and enc.pooling == "cls" and enc.mpp == 0.5
    model, loaded = load_encoder(tmp_path / "encoder")
    assert loaded.init_from == enc.init_from
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 384)
