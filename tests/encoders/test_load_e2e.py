"""Random-weight checkpoints in the upstream layouts, loaded offline, equal to the upstream forward.

One timm-hub preset (kaiko-vits16) and one transformers preset (phikon), each at full size with
random weights: saved as the Hub lays them out, found through a temporary ``HF_HOME`` with
``HF_HUB_OFFLINE=1`` and the network cut, and checked against the model their own library loads.
"""

from __future__ import annotations

import socket
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from zoo_helpers import expand, manifest, random_state, write_hf_snapshot, write_tile_store

from wsi_ssl.encoders.load import load_encoder
from wsi_ssl.encoders.registry import get_preset
from wsi_ssl.stores.encoder_dir import sha256_file

KAIKO_TIMM_CONFIG = {
    "architecture": "vit_small_patch16_224",
    "num_classes": 0,
    "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.5] * 3, "std": [0.5] * 3},
}
PHIKON_CONFIG = {
    "architectures": ["ViTModel"],
    "model_type": "vit",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "patch_size": 16,
    "image_size": 224,
    "num_channels": 3,
    "qkv_bias": True,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "encoder_stride": 16,
    "initializer_range": 0.02,
    "transformers_version": "4.34.0",
}


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HF_HOME, offline mode, and any attempt to open a connection is an error."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path / "hf" / "hub"


@pytest.fixture(scope="module")
def kaiko_state() -> dict[str, torch.Tensor]:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def phikon_state() -> dict[str, torch.Tensor]:
    """Phikon's published key names (transformers 4.34's ViTModel), random values."""
    return random_state(expand(manifest("phikon")), seed=1)


def images(n: int = 3, size: int = 224) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(2))


def test_timm_hub_preset_from_the_cache_and_from_a_path(offline: Path, kaiko_state, tmp_path: Path) -> None:
    import timm

    preset = get_preset("kaiko-vits16")
    snap = write_hf_snapshot(
        offline,
        preset.repo_id,
        {"model.safetensors": kaiko_state, "config.json": KAIKO_TIMM_CONFIG},
        revision=preset.revision or "0" * 40,
    )
    model, config = load_encoder("kaiko-vits16")
    # The upstream forward: timm's own pretrained loader reading the same file.
    upstream = timm.create_model(
        "vit_small_patch16_224",
        pretrained=True,
        num_classes=0,
        img_size=224,
        dynamic_img_size=True,
        pretrained_cfg_overlay={"file": str(snap / "model.safetensors")},
    ).eval()
    x = images()
    with torch.inference_mode():
        ours, ref = model(x), upstream(x)
    assert ours.shape == (3, 384)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    assert config.preset == "kaiko-vits16" and config.revision == preset.revision
    assert config.sha256 == sha256_file(snap / "model.safetensors")
    assert (config.mean, config.input_size, config.mpp) == ((0.5, 0.5, 0.5), 224, 0.5)
    for given in (snap / "model.safetensors", snap):  # --encoder-weights: the file, or its folder
        again, cfg = load_encoder("kaiko-vits16", given)
        with torch.inference_mode():
            torch.testing.assert_close(again(x), ours, rtol=0, atol=0)
        assert cfg.sha256 == config.sha256


def test_transformers_preset_equals_transformers_own_forward(offline: Path, phikon_state, tmp_path: Path) -> None:
    import transformers

    preset = get_preset("phikon")
    snap = write_hf_snapshot(
        offline,
        preset.repo_id,
        {"model.safetensors": phikon_state, "config.json": PHIKON_CONFIG},
        revision=preset.revision or "0" * 40,
    )
    model, config = load_encoder("phikon")
    upstream = transformers.ViTModel.from_pretrained(str(snap), add_pooling_layer=False, local_files_only=True).eval()
    x = images()
    with torch.inference_mode():
        ours, ref = model(x), upstream(pixel_values=x).last_hidden_state[:, 0, :]
    assert ours.shape == (3, 768)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    # A lone weights file under any name, no config.json beside it: the preset's recorded config is used.
    lone = tmp_path / "downloads" / "phikon-weights.safetensors"
    lone.parent.mkdir()
    lone.write_bytes((snap / "model.safetensors").read_bytes())
    again, cfg = load_encoder("phikon", lone)
    with torch.inference_mode():
        torch.testing.assert_close(again(x), ours, rtol=0, atol=1e-6)
    assert cfg.sha256 == config.sha256 == sha256_file(lone)


def test_a_checkpoint_of_another_model_is_refused(offline: Path, kaiko_state) -> None:
    from wsi_ssl.stores.encoder_dir import EncoderError

    write_hf_snapshot(offline, get_preset("kaiko-vitb16").repo_id, {"model.safetensors": kaiko_state})
    with pytest.raises(EncoderError, match="misshapen"):  # ViT-S weights under the ViT-B preset
        load_encoder("kaiko-vitb16")


@pytest.mark.parametrize("name", ["kaiko-vits16", "phikon"])
def test_embed_a_tile_store_offline_with_a_preset(
    name: str, offline: Path, kaiko_state, phikon_state, tmp_path: Path
) -> None:
    from wsi_ssl.embed.config import EmbedConfig
    from wsi_ssl.embed.preprocess import Preprocess
    from wsi_ssl.embed.runner import run_embed

    preset = get_preset(name)
    state, config = (kaiko_state, KAIKO_TIMM_CONFIG) if name == "kaiko-vits16" else (phikon_state, PHIKON_CONFIG)
    snap = write_hf_snapshot(
        offline,
        preset.repo_id,
        {"model.safetensors": state, "config.json": config},
        revision=preset.revision or "0" * 40,
    )
    tiles = write_tile_store(tmp_path / "tiles", "s1", 5, tile_size=64, mpp=0.5)
    summary = run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder=name,
            out=tmp_path / "features",
            batch_size=2,
            workers=0,
            device="cpu",
            progress=False,
        )
    )
    assert summary.ok and summary.slides == 1 and summary.tiles == 5
    with h5py.File(tmp_path / "features" / "s1.h5", "r") as f:
        feats, attrs = f["features"][:], dict(f.attrs)
    assert attrs["encoder"] == name and attrs["encoder_preset"] == name
    assert attrs["encoder_sha256"] == sha256_file(snap / "model.safetensors")
    assert attrs["encoder_revision"] == preset.revision and attrs["encoder_pooling"] == preset.pooling
    model, enc = load_encoder(name)
    x = Preprocess.from_encoder_config(enc)(torch.from_numpy(tiles))  # 64-px tiles resized to 224
    with torch.inference_mode():
        expected = model(x).numpy()
    np.testing.assert_allclose(feats, expected, rtol=0, atol=1e-5)


def test_mpp_mismatch_is_refused_per_slide(offline: Path, kaiko_state, tmp_path: Path) -> None:
    from wsi_ssl.embed.config import EmbedConfig
    from wsi_ssl.embed.runner import run_embed

    write_hf_snapshot(offline, get_preset("kaiko-vits16").repo_id, {"model.safetensors": kaiko_state})
    write_tile_store(tmp_path / "tiles", "at10x", 2, mpp=1.0)
    summary = run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder="kaiko-vits16",
            out=tmp_path / "features",
            workers=0,
            device="cpu",
            progress=False,
        )
    )
    assert not summary.ok and "trained at 0.5 um/px" in summary.failed["at10x"]


def test_serve_tile_encoder_takes_a_preset(offline: Path, kaiko_state) -> None:
    from PIL import Image

    from wsi_ssl.serve.tile_encoder import TileEncoder

    write_hf_snapshot(offline, get_preset("kaiko-vits16").repo_id, {"model.safetensors": kaiko_state})
    encoder = TileEncoder.load("kaiko-vits16")
    tile = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    got = encoder.embed([tile])
    model, cfg = load_encoder("kaiko-vits16")
    x = (torch.from_numpy(np.asarray(tile)).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.5
    with torch.inference_mode():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=0, atol=1e-5)
    assert encoder.name == "kaiko-vits16" and encoder.config.sha256 == cfg.sha256
