"""Feature files changing under the server, impossible slide ids, and unexpected errors (issue #18, 4-5)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_helpers import check_error, make_slide

from wsi_ssl.stores.features import read_features


@pytest.fixture()
def hdr(keys: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": keys["all"]}


def _app_with(app: Any, serve_config: Any, **changes: Any) -> Any:
    """The fixture app's encoder/models/keys with a fresh catalog built from a changed config."""
    from wsi_ssl.serve.app import create_app
    from wsi_ssl.serve.catalog import Catalog
    from wsi_ssl.serve.deps import ServeState

    cfg = serve_config.model_copy(update=changes)
    old = app.state.serve
    catalog = Catalog(dict(cfg.cohorts), mmap_features=cfg.mmap_features)
    return create_app(cfg, ServeState(cfg, catalog, old.keys, old.encoder, old.models))


@pytest.mark.parametrize("mmap", [False, True])
def test_file_rewritten_in_place_is_reopened(
    app: Any, serve_config: Any, hdr: dict[str, str], cohorts: dict[str, Path], tmp_path: Path, mmap: bool
) -> None:
    """Another tool overwrites a1.h5 in place (same inode): the next request serves the new content."""
    from fastapi.testclient import TestClient

    target = cohorts["A"] / "a1.h5"
    other = make_slide(tmp_path, "a1", 23, seed=99)
    with TestClient(_app_with(app, serve_config, mmap_features=mmap)) as client:
        assert client.get("/v1/cohorts/A/slides/a1/tiles", headers=hdr).json()["total"] == 37
        inode = target.stat().st_ino
        shutil.copyfile(other, target)  # truncate and rewrite the same file
        assert target.stat().st_ino == inode
        page = client.get("/v1/cohorts/A/slides/a1/tiles?limit=20", headers=hdr)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 23
        np.testing.assert_array_equal(np.float32(page.json()["features"]), read_features(other).features[:20])
        emb = client.get("/v1/cohorts/A/slides/a1/embedding", headers=hdr).json()["mean"]
        np.testing.assert_allclose(emb, read_features(other).features.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_read_racing_a_writer_is_503_with_retry_after(
    client: Any, hdr: dict[str, str], cohorts: dict[str, Path], tmp_path: Path
) -> None:
    target = cohorts["A"] / "a1.h5"
    assert client.get("/v1/cohorts/A/slides/a1/tiles", headers=hdr).status_code == 200
    whole = make_slide(tmp_path, "a1", 23, seed=99).read_bytes()
    target.write_bytes(whole[:1500])  # a writer half way through rewriting the file in place
    r = client.get("/v1/cohorts/A/slides/a1/tiles", headers=hdr)
    check_error(r, 503, "a1", "being written")
    assert int(r.headers["Retry-After"]) >= 1
    target.write_bytes(whole)  # the writer finishes
    assert client.get("/v1/cohorts/A/slides/a1/tiles", headers=hdr).json()["total"] == 23


def test_a_damaged_file_nobody_writes_is_still_a_500_naming_nothing(
    client: Any, hdr: dict[str, str], cohorts: dict[str, Path]
) -> None:
    target = cohorts["A"] / "a1.h5"
    target.write_bytes(target.read_bytes()[:1500])
    an_hour_ago = time.time() - 3600
    os.utime(target, (an_hour_ago, an_hour_ago))
    r = client.get("/v1/cohorts/A/slides/a1/tiles", headers=hdr)
    assert r.status_code == 500 and r.json()["error"] == "unreadable_feature_file"
    assert str(target) not in r.text


@pytest.mark.parametrize("length", [252, 253, 254, 255, 256])
@pytest.mark.parametrize("suffix", ["", "/embedding", "/tiles", "/predict"])
def test_ids_longer_than_the_store_can_hold_are_404_or_422(
    client: Any, hdr: dict[str, str], length: int, suffix: str
) -> None:
    path = f"/v1/cohorts/A/slides/{'s' * length}{suffix}"
    if suffix == "/predict":
        r = client.post(path, json={"model": "meanpool"}, headers=hdr)
    else:
        r = client.get(path, headers=hdr)
    assert r.status_code == (404 if length <= 252 else 422), r.text
    assert set(r.json()) == {"error", "detail"}


def test_the_longest_storable_id_is_served(
    client: Any, hdr: dict[str, str], cohorts: dict[str, Path], tmp_path: Path
) -> None:
    slide = "s" * 252  # + ".h5" = 255 bytes, the file-name limit
    # Copied in under its final name: the atomic writer's temporary name would be too long.
    make_slide(tmp_path, "short", 4, seed=5).rename(cohorts["A"] / f"{slide}.h5")
    assert client.get(f"/v1/cohorts/A/slides/{slide}", headers=hdr).json()["n_tiles"] == 4
    assert slide in client.get("/v1/cohorts/A/slides", headers=hdr).json()["slides"]


def test_unexpected_error_is_a_short_500_one_log_line_and_keeps_the_connection(
    live_url: str, hdr: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    from wsi_ssl.serve.catalog import Catalog

    def broken(self: Any, cohort: str) -> list[str]:
        raise RuntimeError("boom in the catalog")

    monkeypatch.setattr(Catalog, "slide_ids", broken)
    with httpx.Client(base_url=live_url, headers=hdr) as http, caplog.at_level(logging.INFO):
        r = http.get("/v1/cohorts")
        assert r.status_code == 500 and r.json() == {
            "error": "internal_error",
            "detail": "internal server error; the server log has the details",
        }
        assert r.headers.get("connection", "").lower() != "close"
        assert http.get("/v1/health").status_code == 200  # the same keep-alive connection
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1, [rec.getMessage() for rec in errors]
    message = errors[0].getMessage()
    assert "RuntimeError" in message and "boom in the catalog" in message and "/v1/cohorts" in message
    assert errors[0].exc_info is None and "\n" not in message


def test_client_retries_a_busy_file_after_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from wsi_ssl.client import ApiError, Client

    answers = [503, 503, 200]
    slept: list[float] = []
    monkeypatch.setattr("wsi_ssl.serve.client.time.sleep", slept.append)

    def handler(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0)
        if status == 503:
            return httpx.Response(503, json={"error": "unavailable", "detail": "busy"}, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"cohort": "A", "slide_id": "a1", "n_tiles": 3})

    with Client("http://server", "k", transport=httpx.MockTransport(handler)) as api:
        assert api.slide("A", "a1")["n_tiles"] == 3
    assert slept == [1, 1] and answers == []
    busy = httpx.MockTransport(
        lambda r: httpx.Response(503, json={"error": "unavailable", "detail": "busy"}, headers={"Retry-After": "1"})
    )
    with Client("http://server", "k", transport=busy, busy_retries=1) as api, pytest.raises(ApiError) as err:
        api.slide("A", "a1")
    assert err.value.status == 503
