"""Methods and kNN label providers come from registries; a new one is a class plus a table entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_store, tiny_config
from torch import nn

from wsi_ssl.config import ConfigError, load_config
from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.data import TileDataset, TileIndex, resolve_stores
from wsi_ssl.pretrain.labels import LABEL_PROVIDERS, HeldOutTiles, TileLabelProvider
from wsi_ssl.pretrain.lazy_registry import LazyRegistry
from wsi_ssl.pretrain.methods import registry
from wsi_ssl.pretrain.methods.base import PretrainMethod
from wsi_ssl.pretrain.module import PretrainModule


def test_config_methods_are_the_registered_ones() -> None:
    assert registry.method_names() == ["dino", "mae"]
    for name in registry.method_names():
        cls = registry.get_method(name)
        assert issubclass(cls, PretrainMethod) and cls.name == name
    with pytest.raises(ConfigError, match="unknown pretraining method 'simclr'; known: dino, mae"):
        load_config(PretrainConfig, None, {"method": "simclr"})
    with pytest.raises(KeyError, match="known: dino, mae"):
        registry.get_method("simclr")


class ToyMethod(PretrainMethod):
    """Shrinks the class token of a single view: enough to show what a method must provide."""

    name = "toy"

    def build(self, module: PretrainModule) -> None:
        module.toy_head = nn.Linear(module.embed_dim, 4)

    def losses(self, module: PretrainModule, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        x = tiles.float() / 255.0
        loss = module.toy_head(module.student(x)).pow(2).mean()
        return {"loss": loss, "toy_norm": loss.detach().sqrt()}

    def encoder(self, module: PretrainModule) -> nn.Module:
        return module.student


def test_a_registered_method_trains_through_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    table = LazyRegistry[type[PretrainMethod]]("pretraining method", {"toy": f"{__name__}:ToyMethod"})
    monkeypatch.setattr(registry, "METHODS", table)
    module = PretrainModule(PretrainConfig.model_validate(tiny_config("toy")).model_dump(mode="json"))
    assert module.encoder() is module.student and list(module.monitored_backbones()) == ["student"]
    assert {k.split(".")[0] for k in module.state_dict()} == {"student", "toy_head"}
    out = module.losses(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    out["loss"].backward()
    assert module.toy_head.weight.grad is not None and set(out) == {"loss", "toy_norm"}


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (
            tiny_config("dino", dino={"ibot_weight": 1.0, "ibot_separate_head": True}),
            {
                "student",
                "teacher",
                "student_head",
                "teacher_head",
                "dino_loss",
                "mask_token",
                "ibot_loss",
                "student_patch_head",
                "teacher_patch_head",
            },
        ),
        (tiny_config("dino"), {"student", "teacher", "student_head", "teacher_head", "dino_loss"}),
        (tiny_config("mae"), {"student", "mae"}),
    ],
    ids=["dino+ibot", "dino", "mae"],
)
def test_checkpoint_keys_stay_those_of_earlier_runs(cfg: dict, expected: set[str]) -> None:
    """The method's parts live on the module under their old names, so old run dirs still load and export."""
    keys = PretrainModule(PretrainConfig.model_validate(cfg).model_dump(mode="json")).state_dict().keys()
    assert {k.split(".")[0] for k in keys} == expected
    sample = {"dino_loss.center", "student_head.last_layer.parametrizations.weight.original0", "mae.decoder.pos"}
    assert sample & set(keys) == {k for k in sample if k.split(".")[0] in expected}


class ByStore(TileLabelProvider):
    """Labels a tile with the parity of its store's slide number; knows nothing of slide2."""

    @property
    def classes(self) -> list[str]:
        return ["even", "odd"]

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> ByStore:
        return cls()

    def store_labels(self, store, tile_idx: np.ndarray) -> np.ndarray | None:  # type: ignore[no-untyped-def]
        number = int(store.attrs["slide_id"].removeprefix("slide"))
        return None if number == 2 else np.full(len(tile_idx), number % 2, dtype=np.int64)


def test_a_tile_label_provider_labels_held_out_tiles_grouped_by_slide(tmp_path: Path) -> None:
    assert LABEL_PROVIDERS.names() == ["labels", "cohort"]
    for i in range(3):
        make_store(tmp_path, f"slide{i}", n=12, seed=i)
    index = TileIndex.build(resolve_stores([tmp_path]))
    _, hold = index.split_holdout(18, seed=0)
    held_out = HeldOutTiles(index, hold, TileDataset(index, hold).load_all())
    got = ByStore().knn_set(held_out)
    assert got is not None and got.classes == ["even", "odd"]
    from_known = index.store_idx[hold] != 2  # slide2's tiles are left out, the rest keep their images
    assert torch.equal(got.images, held_out.images[torch.from_numpy(from_known)])
    np.testing.assert_array_equal(got.groups, index.store_idx[hold][from_known])
    np.testing.assert_array_equal(got.labels.numpy(), got.groups % 2)
    # Fewer than two classes (or too few tiles) make no set.
    first = index.store_idx[hold] == 0
    one_slide = HeldOutTiles(index, hold[first], held_out.images[torch.from_numpy(first)])
    assert ByStore().knn_set(one_slide) is None
