"""Through a real uvicorn on loopback: the analyst client, new slides, concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from serve_helpers import make_slide, png_bytes

from wsi_ssl.client import ApiError, Client
from wsi_ssl.stores.features import read_features


def test_client_round_trip(live_url: str, keys: dict[str, Any], cohorts: dict[str, Any], loaded: Any) -> None:
    with Client(live_url, keys["A"]) as api:
        assert api.health()["status"] == "ok"
        assert api.cohorts() == {"A": 3}
        assert api.slides("A", page_size=2) == ["a1", "a2", "a3"]
        assert api.slide("A", "a1")["n_tiles"] == 37
        ff = read_features(cohorts["A"] / "a1.h5")
        feats, coords = api.tile_embeddings("A", "a1", page_size=20)
        np.testing.assert_array_equal(feats, ff.features)
        np.testing.assert_array_equal(coords, ff.coords)
        half, _ = api.tile_embeddings("A", "a3", page_size=2)
        assert half.dtype == np.float16 and half.shape == (5, 8)
        np.testing.assert_allclose(api.slide_embedding("A", "a1"), ff.features.mean(axis=0), rtol=1e-5, atol=1e-6)
        agg = api.slide_embedding("A", "a1", kind="aggregator")
        assert agg is not None and agg.shape == (4,)
        assert api.slide_embedding("A", "a2") is None
        emb = api.embed_tiles([png_bytes(32, seed=3), png_bytes(40, seed=4)])
        assert emb.shape == (2, 16) and emb.dtype == np.float32
        pred = api.predict("A", "a1", "meanpool")
        assert pred["logits"].shape == (2,)
        assert "meanpool" in api.models()


def test_client_raises_the_servers_error(live_url: str, keys: dict[str, Any]) -> None:
    with Client(live_url, keys["A"]) as api:
        with pytest.raises(ApiError) as err:
            api.slide("B", "b1")
        assert err.value.status == 404 and "b1" in err.value.detail
    with Client(live_url, "wsk_wrong") as api, pytest.raises(ApiError) as err:
        api.cohorts()
    assert err.value.status == 401


def test_new_slide_appears_without_restart(live_url: str, keys: dict[str, Any], cohorts: dict[str, Any]) -> None:
    with Client(live_url, keys["B"]) as api:
        assert api.slides("B") == ["b1"]
        with pytest.raises(ApiError):
            api.slide("B", "b2")
        make_slide(cohorts["B"], "b2", 13, seed=7)
        assert api.slides("B") == ["b1", "b2"]
        assert api.cohorts() == {"B": 2}
        feats, _ = api.tile_embeddings("B", "b2")
        np.testing.assert_array_equal(feats, read_features(cohorts["B"] / "b2.h5").features)
        make_slide(cohorts["B"], "b2", 4, seed=8)  # rewritten in place (renamed over): served fresh
        assert api.slide("B", "b2")["n_tiles"] == 4
        np.testing.assert_array_equal(api.tile_embeddings("B", "b2")[0], read_features(cohorts["B"] / "b2.h5").features)


def test_concurrent_requests_are_consistent(live_url: str, keys: dict[str, Any], cohorts: dict[str, Any]) -> None:
    """32 clients read pages of every slide while new slides are written: every answer is right."""
    expected = {s: read_features(cohorts["A"] / f"{s}.h5") for s in ("a1", "a3")}

    def work(i: int) -> int:
        checked = 0
        with Client(live_url, keys["all"]) as api:
            for j in range(2):
                slide = ("a1", "a3")[(i + j) % 2]
                feats, coords = api.tile_embeddings("A", slide, page_size=7)
                np.testing.assert_array_equal(feats, expected[slide].features)
                np.testing.assert_array_equal(coords, expected[slide].coords)
                if i % 8 == 0:
                    make_slide(cohorts["B"], f"new{i}_{j}", 3, seed=i * 10 + j)
                checked += 1
        return checked

    with ThreadPoolExecutor(32) as pool:
        assert sum(pool.map(work, range(32))) == 64
    with Client(live_url, keys["B"]) as api:
        assert len(api.slides("B")) == 1 + 4 * 2


def test_feature_files_are_opened_read_only(live_url: str, keys: dict[str, Any], cohorts: dict[str, Any]) -> None:
    path = cohorts["A"] / "a1.h5"
    path.chmod(0o444)
    before = (path.stat().st_mtime_ns, path.read_bytes())
    with Client(live_url, keys["A"]) as api:
        api.tile_embeddings("A", "a1")
        api.slide_embedding("A", "a1")
        api.predict("A", "a1", "meanpool")
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
