"""Fixtures for the serve tests: two small cohorts, keys, a tiny encoder and a tiny MIL model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import DIM, make_slide


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random, tiny timm ViT saved as an encoder dir (Contract 2)."""
    import timm

    from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder

    kwargs: dict[str, Any] = {"img_size": 32, "patch_size": 16, "embed_dim": 16, "depth": 1, "num_heads": 2}
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **kwargs)
    out = tmp_path_factory.mktemp("encoder") / "tiny_vit"
    save_encoder(
        model, out, EncoderConfig(arch="vit_tiny_patch16_224", model_kwargs=kwargs, embed_dim=16, input_size=32)
    )
    return out


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted MIL-like model: mean pooling, a linear head, and a slide embedding output."""
    import json

    import torch

    class MeanPoolHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(DIM, 4)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
            emb = self.proj(features).mean(dim=0)
            return {"logits": self.head(emb), "embedding": emb}

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("mil") / "meanpool"
    folder.mkdir()
    torch.jit.script(MeanPoolHead()).save(str(folder / "model.pt"))
    (folder / "model.json").write_text(
        json.dumps(
            {"input_dim": DIM, "task": "demo", "outputs": {"logits": "class scores", "embedding": "slide embedding"}}
        )
    )
    return folder


@pytest.fixture()
def cohorts(tmp_path: Path) -> dict[str, Path]:
    """Cohort A: three slides (one without tiles, one float16); cohort B: one slide."""
    a, b = tmp_path / "cohort_a", tmp_path / "cohort_b"
    a.mkdir()
    b.mkdir()
    make_slide(a, "a1", 37, seed=1)
    make_slide(a, "a2", 0, seed=2)
    make_slide(a, "a3", 5, seed=3, dtype="float16")
    make_slide(b, "b1", 11, seed=4)
    return {"A": a, "B": b}


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Any]:
    """Keys file with one key per scope; returns the file and the plaintext keys."""
    from wsi_ssl.serve.keys import add_key

    path = tmp_path / "keys.json"
    return {
        "path": path,
        "A": add_key(path, "study-a", ["A"]),
        "B": add_key(path, "study-b", ["B"]),
        "all": add_key(path, "lab", ["*"]),
    }


@pytest.fixture()
def serve_config(
    tmp_path: Path, cohorts: dict[str, Path], keys: dict[str, Any], tiny_encoder_dir: Path, tiny_model_path: Path
) -> Any:
    from wsi_ssl.serve.config import ServeConfig

    return ServeConfig(
        cohorts=cohorts,
        keys_file=keys["path"],
        access_log=tmp_path / "access.log",
        encoder={"path": str(tiny_encoder_dir)},
        models={"meanpool": tiny_model_path},
        limits={
            "max_page_size": 20,
            "default_page_size": 10,
            "max_tiles_per_request": 4,
            "max_image_bytes": 20000,
            "max_image_pixels": 256 * 256,
        },
    )


@pytest.fixture(scope="session")
def loaded(tiny_encoder_dir: Path, tiny_model_path: Path) -> tuple[Any, dict[str, Any]]:
    """The encoder and models, loaded once for the session (each test gets fresh cohorts and keys)."""
    from wsi_ssl.serve.models import load_models
    from wsi_ssl.serve.tile_encoder import TileEncoder

    return TileEncoder.load(str(tiny_encoder_dir)), load_models({"meanpool": tiny_model_path})


@pytest.fixture()
def app(serve_config: Any, loaded: tuple[Any, dict[str, Any]]) -> Any:
    from wsi_ssl.serve.app import create_app
    from wsi_ssl.serve.catalog import Catalog
    from wsi_ssl.serve.deps import ServeState
    from wsi_ssl.serve.keys import KeyStore

    encoder, models = loaded
    state = ServeState(
        config=serve_config,
        catalog=Catalog(dict(serve_config.cohorts)),
        keys=KeyStore(serve_config.keys_file, recheck_s=0.0),  # key changes seen at once in tests
        encoder=encoder,
        models=models,
    )
    return create_app(serve_config, state)


@pytest.fixture()
def client_factory(serve_config: Any, loaded: tuple[Any, dict[str, Any]]) -> Iterator[Any]:
    """Build a test client for the fixture config with other ``models`` (loaded from the config)."""
    from fastapi.testclient import TestClient

    from wsi_ssl.serve.app import build_state, create_app

    clients: list[Any] = []

    def make(models: dict[str, Any]) -> Any:
        cfg = serve_config.model_copy(update={"encoder": None})
        cfg = type(serve_config).model_validate({**cfg.model_dump(), "models": models})
        test_client = TestClient(create_app(cfg, build_state(cfg)))
        clients.append(test_client.__enter__())
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture()
def client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture()
def live_url(app: Any) -> Iterator[str]:
    """The app under a real uvicorn on a free loopback port, in a thread; stopped after the test."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start on 127.0.0.1 within 20 s")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
