"""Every endpoint's normal answer, checked against the feature files it serves."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from serve_helpers import DIM, png_bytes

from wsi_ssl.serve.schemas import (
    CohortList,
    Health,
    ModelList,
    Prediction,
    SlideEmbedding,
    SlideList,
    SlideMeta,
    TileEmbeddings,
    TilePage,
)
from wsi_ssl.stores.features import read_features


def hdr(keys: dict[str, Any], who: str = "all") -> dict[str, str]:
    return {"X-API-Key": keys[who]}


def test_health_needs_no_key(client: Any) -> None:
    r = client.get("/v1/health")
    assert r.status_code == 200
    health = Health.model_validate(r.json())
    assert health.status == "ok" and health.encoder and health.models == 1


def test_cohorts_lists_only_the_keys_cohorts(client: Any, keys: dict[str, Any]) -> None:
    everything = CohortList.model_validate(client.get("/v1/cohorts", headers=hdr(keys)).json())
    assert [(c.name, c.n_slides) for c in everything.cohorts] == [("A", 3), ("B", 1)]
    only_a = client.get("/v1/cohorts", headers=hdr(keys, "A")).json()
    assert only_a == {"cohorts": [{"name": "A", "n_slides": 3}]}


def test_slide_list_is_paginated(client: Any, keys: dict[str, Any]) -> None:
    first = SlideList.model_validate(client.get("/v1/cohorts/A/slides?limit=2", headers=hdr(keys)).json())
    assert first.slides == ["a1", "a2"] and first.total == 3 and first.next_offset == 2
    rest = SlideList.model_validate(client.get("/v1/cohorts/A/slides?offset=2&limit=2", headers=hdr(keys)).json())
    assert rest.slides == ["a3"] and rest.next_offset is None


def test_slide_metadata(client: Any, keys: dict[str, Any], cohorts: dict[str, Any]) -> None:
    meta = SlideMeta.model_validate(client.get("/v1/cohorts/A/slides/a3", headers=hdr(keys)).json())
    assert (meta.n_tiles, meta.dim, meta.dtype) == (5, DIM, "float16")
    assert meta.encoder == "tiny" and meta.mpp == 0.5 and meta.tile_size == 224
    assert meta.attrs["slide_id"] == "a3"


def test_slide_embedding_is_the_mean_and_the_aggregators(
    client: Any, keys: dict[str, Any], cohorts: dict[str, Any], loaded: Any
) -> None:
    body = SlideEmbedding.model_validate(client.get("/v1/cohorts/A/slides/a1/embedding", headers=hdr(keys)).json())
    feats = read_features(cohorts["A"] / "a1.h5").features
    np.testing.assert_allclose(body.mean or [], feats.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert body.aggregator is not None and body.aggregator.model == "meanpool"
    expected = loaded[1]["meanpool"].predict(feats)["embedding"]
    np.testing.assert_allclose(body.aggregator.embedding, expected, rtol=1e-5, atol=1e-6)


def test_slide_without_tiles_has_no_mean(client: Any, keys: dict[str, Any]) -> None:
    body = client.get("/v1/cohorts/A/slides/a2/embedding", headers=hdr(keys)).json()
    assert body["n_tiles"] == 0 and body["mean"] is None and body["aggregator"] is None


def test_tile_pages_json_cover_the_slide_in_order(client: Any, keys: dict[str, Any], cohorts: dict[str, Any]) -> None:
    ff = read_features(cohorts["A"] / "a1.h5")
    feats, coords, offset = [], [], 0
    while offset is not None:
        page = TilePage.model_validate(
            client.get(f"/v1/cohorts/A/slides/a1/tiles?offset={offset}", headers=hdr(keys)).json()
        )
        assert page.limit == 10 and page.total == 37
        feats += page.features
        coords += page.coords
        offset = page.next_offset
    np.testing.assert_allclose(np.asarray(feats), ff.features, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(coords), ff.coords)


@pytest.mark.parametrize("slide,dtype", [("a1", np.float32), ("a3", np.float16)])
def test_tile_page_npy_round_trip(
    client: Any, keys: dict[str, Any], cohorts: dict[str, Any], slide: str, dtype: Any
) -> None:
    r = client.get(
        f"/v1/cohorts/A/slides/{slide}/tiles?offset=3&limit=20", headers={**hdr(keys), "Accept": "application/x-npy"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
    page = np.load(io.BytesIO(r.content), allow_pickle=False)
    ff = read_features(cohorts["A"] / f"{slide}.h5")
    assert page["features"].dtype == dtype
    np.testing.assert_array_equal(page["features"], ff.features[3:23])
    np.testing.assert_array_equal(page["coords"], ff.coords[3:23])
    assert r.headers["X-Total-Count"] == str(len(ff)) and r.headers["X-Offset"] == "3"
    assert r.headers["X-Next-Offset"] == ("23" if len(ff) > 23 else "")


def test_embed_tiles_matches_the_encoder(client: Any, keys: dict[str, Any], tiny_encoder_dir: Any) -> None:
    """Embeddings equal the encoder's forward pass on the tile normalised by its config.json."""
    import torch
    from PIL import Image

    from wsi_ssl.encoders.load import load_encoder

    tiles = [png_bytes(32, seed=1), png_bytes(32, seed=2, fmt="JPEG")]
    files = [("files", ("t1.png", tiles[0], "image/png")), ("files", ("t2.jpg", tiles[1], "image/jpeg"))]
    body = TileEmbeddings.model_validate(client.post("/v1/embed", files=files, headers=hdr(keys, "A")).json())
    assert body.files == ["t1.png", "t2.jpg"] and body.dim == 16
    model, cfg = load_encoder(tiny_encoder_dir)
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(t)).convert("RGB"), dtype=np.float32) / 255.0 for t in tiles])
    x = (pixels - np.asarray(cfg.mean, dtype=np.float32)) / np.asarray(cfg.std, dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(np.asarray(body.embeddings), expected, rtol=1e-4, atol=1e-5)
    r = client.post("/v1/embed", files=files, headers={**hdr(keys, "A"), "Accept": "application/x-npy"})
    np.testing.assert_allclose(np.load(io.BytesIO(r.content)), expected, rtol=1e-4, atol=1e-5)


def test_models_and_predict(client: Any, keys: dict[str, Any], cohorts: dict[str, Any], loaded: Any) -> None:
    listed = ModelList.model_validate(client.get("/v1/models", headers=hdr(keys, "B")).json())
    assert [m.name for m in listed.models] == ["meanpool"] and listed.models[0].meta["input_dim"] == DIM
    r = client.post("/v1/cohorts/B/slides/b1/predict", json={"model": "meanpool"}, headers=hdr(keys, "B"))
    pred = Prediction.model_validate(r.json())
    expected = loaded[1]["meanpool"].predict(read_features(cohorts["B"] / "b1.h5").features)
    np.testing.assert_allclose(pred.outputs["logits"], expected["logits"], rtol=1e-5, atol=1e-6)
    assert set(pred.outputs) == {"logits", "embedding"}
