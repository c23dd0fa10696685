"""End-to-end runs of the embed stage on generated stores with a tiny random ViT."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from torchvision.transforms import functional as TF

from wsi_ssl.embed.command import register
from wsi_ssl.embed.config import EmbedConfig
from wsi_ssl.embed.runner import run_embed
from wsi_ssl.encoders.load import load_encoder
from wsi_ssl.stores.encoder_dir import read_encoder_config
from wsi_ssl.stores.features import read_features
from wsi_ssl.stores.tile_store import TileStore


def reference_features(encoder_dir: Path, store: Path) -> np.ndarray:
    """Each tile embedded alone, preprocessed by torchvision (an independent reference)."""
    model, cfg = load_encoder(encoder_dir)
    ts = TileStore(store)
    rows = []
    with torch.inference_mode():
        for i in range(len(ts)):
            img = torch.from_numpy(ts.tile(i)).permute(2, 0, 1).float() / 255.0
            if img.shape[-1] != cfg.input_size:
                img = TF.resize(
                    img, [cfg.input_size, cfg.input_size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True
                )
            img = TF.normalize(img, list(cfg.mean), list(cfg.std))
            rows.append(model(img[None])[0].numpy())
    return np.stack(rows)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["embed", *argv])
    return int(args.func(args))


def test_each_row_is_its_tile_embedded_alone(
    tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path
) -> None:
    coords = {"a": store_factory("a", 21, seed=1), "b": store_factory("b", 5, seed=2)}
    out = tmp_path / "feats"
    rc = cli(
        [
            "--tiles",
            str(tmp_path / "tiles"),
            "--encoder",
            str(tiny_encoder),
            "--out",
            str(out),
            "--batch-size",
            "8",
            "--workers",
            "1",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 0
    enc = read_encoder_config(tiny_encoder)
    for slide_id, n in (("a", 21), ("b", 5)):
        f = read_features(out / f"{slide_id}.h5")
        assert f.features.shape == (n, 64) and f.features.dtype == np.float32
        assert f.coords.dtype == np.int64
        np.testing.assert_array_equal(f.coords, coords[slide_id])
        ref = reference_features(tiny_encoder, tmp_path / "tiles" / f"{slide_id}.zarr")
        np.testing.assert_allclose(f.features, ref, rtol=1e-4, atol=1e-4)
        assert f.attrs["slide_id"] == slide_id
        assert f.attrs["encoder_sha256"] == enc.sha256
        assert f.attrs["encoder"] == "tiny-vit"
        assert f.attrs["mpp"] == pytest.approx(0.5)
        assert f.attrs["tile_size"] == 32
        assert f.attrs["format_version"] == 1
    assert not [p for p in out.iterdir() if ".partial-" in p.name]


def test_other_tile_size_is_resized_and_float16_is_close(
    tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path
) -> None:
    store_factory("big", 6, tile_size=48, seed=3)
    base = dict(
        tiles=tmp_path / "tiles", encoder=str(tiny_encoder), batch_size=4, workers=0, device="cpu", progress=False
    )
    s32 = run_embed(EmbedConfig(out=tmp_path / "f32", **base))
    s16 = run_embed(EmbedConfig(out=tmp_path / "f16", dtype="float16", **base))
    assert s32.ok and s16.ok and s32.tiles == s16.tiles == 6
    f32 = read_features(tmp_path / "f32" / "big.h5")
    f16 = read_features(tmp_path / "f16" / "big.h5")
    assert f16.features.dtype == np.float16 and f32.features.dtype == np.float32
    np.testing.assert_allclose(f16.features.astype(np.float32), f32.features, rtol=2e-3, atol=2e-3)
    ref = reference_features(tiny_encoder, tmp_path / "tiles" / "big.zarr")
    np.testing.assert_allclose(f32.features, ref, rtol=1e-3, atol=1e-3)
    # bf16 autocast (what GPUs run) works on the CPU too, within bf16's 8-bit mantissa.
    assert run_embed(EmbedConfig(out=tmp_path / "bf16", precision="bf16", **base)).ok
    bf = read_features(tmp_path / "bf16" / "big.h5")
    assert bf.attrs["precision"] == "bf16"
    np.testing.assert_allclose(bf.features, f32.features, atol=0.1 * float(np.abs(f32.features).max()))


def test_bad_stores_are_refused_and_the_rest_is_written(
    tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_factory("good", 4)
    store_factory("empty", 0)
    store_factory("unfinished", 4, complete=False)
    store_factory("coarse", 4, mpp=0.6)  # 20% off the encoder's 0.5
    store_factory("close", 4, mpp=0.54)  # 8%: within the default 10%
    out = tmp_path / "feats"
    argv = [
        "--tiles",
        str(tmp_path / "tiles"),
        "--encoder",
        str(tiny_encoder),
        "--out",
        str(out),
        "--workers",
        "0",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert "failed unfinished" in err and "incomplete" in err
    assert "0.6 um/px" in err and "0.5 um/px" in err
    assert sorted(p.name for p in out.glob("*.h5")) == ["close.h5", "empty.h5", "good.h5"]
    assert read_features(out / "empty.h5").features.shape == (0, 64)
    # A looser tolerance lets the coarse store through; the complete ones are skipped.
    assert cli([*argv, "--mpp-tolerance", "0.25"]) == 1  # the unfinished store is still refused
    assert (out / "coarse.h5").is_file()
    assert "3 skipped" in capsys.readouterr().err


def test_timm_name_with_local_weights(tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path) -> None:
    """A timm name + a local weights file is an encoder too; its input size is timm's (160 px here)."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    model = timm.create_model("test_vit", pretrained=False, num_classes=0)
    weights = tmp_path / "test_vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    store_factory("s", 2)
    summary = run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder="test_vit",
            encoder_weights=str(weights),
            out=tmp_path / "f",
            workers=0,
            device="cpu",
            progress=False,
        )
    )
    assert summary.ok
    f = read_features(tmp_path / "f" / "s.h5")
    assert f.features.shape == (2, 64) and f.attrs["encoder"] == "test_vit"
    with h5py.File(tmp_path / "f" / "s.h5") as h:
        assert h.attrs["input_size"] == 160


def test_bad_encoder_stops_before_any_work(
    store_factory: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_factory("s", 2)
    rc = cli(
        [
            "--tiles",
            str(tmp_path / "tiles"),
            "--encoder",
            "vit_small_patch16_224",
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 2 and "--encoder-weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unreadable_slide_fails_alone_in_a_shared_batch(
    tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path
) -> None:
    for name in ("a", "b", "c"):
        store_factory(name, 6, seed=ord(name), shard_tiles=4)
    shard = tmp_path / "tiles" / "b.zarr" / "tiles" / "c" / "1" / "0" / "0" / "0"  # tiles 4-5 of b
    # batches of 8: [a 0:6, b 0:2], [b 2:6, c 0:4], [c 4:6]; b fails in the second
    data = bytearray(shard.read_bytes())
    data[10:200] = bytes(190)
    shard.write_bytes(bytes(data))
    summary = run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder=str(tiny_encoder),
            out=tmp_path / "f",
            batch_size=8,
            workers=1,
            device="cpu",
            progress=False,
        )
    )
    assert not summary.ok and list(summary.failed) == ["b"] and "reading tiles 2:6" in summary.failed["b"]
    assert summary.slides == 2 and summary.tiles == 12
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["a.h5", "c.h5", "embed_config.yaml"]
    for name in ("a", "c"):  # c shared a batch with the broken part of b
        got = read_features(tmp_path / "f" / f"{name}.h5").features
        np.testing.assert_allclose(
            got, reference_features(tiny_encoder, tmp_path / "tiles" / f"{name}.zarr"), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("when", ["queued", "landed"])
def test_a_failed_forward_fails_only_the_slides_in_its_batch(
    tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A device error surfaces either when the batch is queued (out of memory) or when its
    features are read back a batch later (an error inside a kernel); both fail that batch's
    slides alone, while the batch queued behind it is still written."""
    from wsi_ssl.embed import runner

    for name in ("a", "b", "c", "d"):
        store_factory(name, 6, seed=ord(name), shard_tiles=4)
    # batches of 8: [a 0:6, b 0:2], [b 2:6, c 0:4], [c 4:6, d 0:6]; the second one fails
    calls = {"n": 0}
    submit = runner._Encoder.submit

    def flaky(self: Any, tiles: torch.Tensor) -> Any:
        calls["n"] += 1
        if calls["n"] == 2 and when == "queued":
            raise RuntimeError("CUDA out of memory (simulated)")
        pending = submit(self, tiles)
        if calls["n"] == 2:
            pending.result = lambda: (_ for _ in ()).throw(RuntimeError("device-side assert (simulated)"))
        return pending

    monkeypatch.setattr(runner._Encoder, "submit", flaky)
    summary = run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder=str(tiny_encoder),
            out=tmp_path / "f",
            batch_size=8,
            workers=1,
            device="cpu",
            progress=False,
        )
    )
    assert calls["n"] == 3 and sorted(summary.failed) == ["b", "c"]
    assert all("forward failed on a batch" in why and "simulated" in why for why in summary.failed.values())
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["a.h5", "d.h5", "embed_config.yaml"]
    for name in ("a", "d"):
        got = read_features(tmp_path / "f" / f"{name}.h5").features
        np.testing.assert_allclose(
            got, reference_features(tiny_encoder, tmp_path / "tiles" / f"{name}.zarr"), rtol=1e-4, atol=1e-4
        )
