"""Config validation, the encoder's preprocessing, and feature files of other tools."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torchvision.transforms import functional as TF

from wsi_ssl.config import ConfigError, load_config
from wsi_ssl.embed import read_features
from wsi_ssl.embed.config import EmbedConfig
from wsi_ssl.embed.preprocess import Preprocess
from wsi_ssl.stores.features import FeatureWriter

ROOT = Path(__file__).resolve().parents[2]


def test_default_yaml_loads_and_bad_keys_are_named(tmp_path: Path) -> None:
    cfg = load_config(EmbedConfig, ROOT / "configs" / "embed" / "default.yaml")
    assert cfg.batch_size == 64 and cfg.mpp_tolerance == pytest.approx(0.10)
    with pytest.raises(ConfigError, match="batch_sise"):
        load_config(EmbedConfig, overrides={"batch_sise": 3})
    with pytest.raises(ConfigError, match="precision"):
        load_config(EmbedConfig, flags={"precision": "int8"})
    with pytest.raises(ConfigError, match="fp16"):
        load_config(EmbedConfig, flags={"device": "cpu", "precision": "fp16"})
    with pytest.raises(ConfigError, match="tiles, out"):
        EmbedConfig(encoder="x").require_paths()


@pytest.mark.parametrize("size", [32, 48])
def test_preprocess_matches_torchvision(size: int) -> None:
    rng = np.random.default_rng(size)
    tiles = rng.integers(0, 256, size=(3, size, size, 3), dtype=np.uint8)
    pre = Preprocess(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    got = pre(torch.from_numpy(tiles))
    assert got.shape == (3, 3, 32, 32) and got.dtype == torch.float32
    for i in range(3):
        img = torch.from_numpy(tiles[i]).permute(2, 0, 1).float() / 255.0
        img = TF.resize(img, [32, 32], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        ref = TF.normalize(img, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        torch.testing.assert_close(got[i], ref, rtol=1e-4, atol=1e-4)


def test_clam_and_trident_files_open_through_the_same_api(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    feats, coords = rng.normal(size=(5, 8)).astype(np.float32), rng.integers(0, 9999, size=(5, 2))
    with h5py.File(tmp_path / "clam.h5", "w") as f:  # CLAM's create_patches/extract_features layout
        f.create_dataset("features", data=feats[None])
        f.create_dataset("coords", data=coords.astype(np.int32))
    with h5py.File(tmp_path / "trident.h5", "w") as f:  # TRIDENT: [N, D] + coords with attrs on them
        f.create_dataset("features", data=feats)
        f.create_dataset("coords", data=coords)
        f["coords"].attrs["patch_size"] = 256
    for name in ("clam", "trident"):
        ff = read_features(tmp_path / f"{name}.h5")
        np.testing.assert_array_equal(ff.features, feats)
        np.testing.assert_array_equal(ff.coords, coords)
        assert ff.coords.dtype == np.int64 and ff.slide_id == name


def test_feature_writer_refuses_gaps_and_leaves_no_file(tmp_path: Path) -> None:
    w = FeatureWriter(tmp_path / "s.h5", np.zeros((6, 2)), 4, {"slide_id": "s"})
    w.write(0, np.ones((3, 4)))
    with pytest.raises(ValueError, match="expected start 3"):
        w.write(4, np.ones((2, 4)))
    with pytest.raises(ValueError, match="only 3 of 6 rows"):
        w.close()
    assert list(tmp_path.iterdir()) == []
