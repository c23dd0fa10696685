"""The model-loading seam: TorchScript files and folds, loader plugins, and clear load errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_helpers import DIM

from wsi_ssl.serve.config import ModelSpec, ServeConfig
from wsi_ssl.serve.models import ModelInputError, ModelLoadError, load_model


@pytest.fixture()
def linear_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    np.save(run / "weights.npy", np.linspace(-1, 1, DIM).astype(np.float32))
    (run / "meta.json").write_text(
        json.dumps({"input_dim": DIM, "task": "classification", "folds": [{"index": 0}, {"index": 1}]})
    )
    return run


def test_loader_plugin_serves_predict_bag_models(linear_run: Path) -> None:
    model = load_model("lin", ModelSpec(path=linear_run, loader="serve_helpers:load_linear_run"))
    assert model.meta["folds"] == 2 and model.meta["format"] == "serve_helpers:load_linear_run"
    feats = np.random.default_rng(0).normal(size=(6, DIM)).astype(np.float32)
    out = model.predict(feats)
    np.testing.assert_allclose(out["scores"], feats @ np.linspace(-1, 1, DIM), rtol=1e-5)
    assert out["prob"].shape == (1,)
    with pytest.raises(ModelInputError, match="takes 8-dimensional features"):
        model.predict(feats[:, :5])


def test_loader_plugin_from_yaml_config_through_the_api(
    client_factory: Any, linear_run: Path, keys: dict[str, Any]
) -> None:
    client = client_factory({"lin": {"path": str(linear_run), "loader": "serve_helpers:load_linear_run"}})
    r = client.post("/v1/cohorts/A/slides/a1/predict", json={"model": "lin"}, headers={"X-API-Key": keys["A"]})
    assert r.status_code == 200 and len(r.json()["outputs"]["scores"]) == 37


def test_torchscript_folds_are_averaged(tmp_path: Path) -> None:
    import torch

    class Scale(torch.nn.Module):
        def __init__(self, k: float) -> None:
            super().__init__()
            self.k = k

        def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"value": features.sum().reshape(1) * self.k}

    for i, k in enumerate((1.0, 3.0)):
        (tmp_path / f"fold{i}").mkdir()
        torch.jit.script(Scale(k)).save(str(tmp_path / f"fold{i}" / "model.pt"))
    model = load_model("scaled", tmp_path)
    assert model.meta["folds"] == 2
    np.testing.assert_allclose(model.predict(np.ones((3, 2), dtype=np.float32))["value"], [12.0])


@pytest.mark.parametrize(
    "spec,words",
    [
        ("missing/model.pt", "does not exist"),
        ({"path": ".", "loader": "no_such_module:load"}, "cannot be imported"),
        ({"path": ".", "loader": "serve_helpers"}, "package.module:function"),
    ],
)
def test_bad_model_specs_name_the_problem(tmp_path: Path, spec: Any, words: str) -> None:
    cfg = ServeConfig(models={"m": spec})
    with pytest.raises(ModelLoadError, match=words):
        load_model("m", cfg.models["m"])


def test_mil_run_dir_without_loader_says_how_to_serve_it(tmp_path: Path) -> None:
    (tmp_path / "folds" / "fold_0").mkdir(parents=True)
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="loader: wsi_ssl.mil.loading:load_mil_model"):
        load_model("her2", tmp_path)


def test_not_torchscript_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="not a TorchScript file"):
        load_model("bad", bad)
