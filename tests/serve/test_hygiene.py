"""Keys that fail closed, a bounded access log, no server paths or Host-built redirects (issue #18)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import check_error

from wsi_ssl.stores.features import write_features


def test_corrupt_keys_file_fails_closed_until_repaired(app: Any, serve_config: Any, keys: dict[str, Any]) -> None:
    """A broken hand edit (meant to revoke a key) answers 503 to every request, not the old key set."""
    from fastapi.testclient import TestClient

    from wsi_ssl.serve.app import create_app
    from wsi_ssl.serve.deps import ServeState
    from wsi_ssl.serve.keys import KeyStore

    old = app.state.serve
    store = KeyStore(serve_config.keys_file, recheck_s=0.2)
    state = ServeState(serve_config, old.catalog, store, old.encoder, old.models)
    path: Path = keys["path"]
    good = path.read_text()
    with TestClient(create_app(serve_config, state)) as client:
        assert client.get("/v1/cohorts", headers={"X-API-Key": keys["A"]}).status_code == 200
        path.write_text(good.replace('"study-a"', '"study-a",,'))  # no longer JSON
        time.sleep(0.3)
        for key in (keys["A"], keys["B"], keys["all"], "wsk_wrong", ""):
            for _ in range(3):
                check_error(client.get("/v1/cohorts", headers={"X-API-Key": key}), 503, "keys file")
        path.write_text(good)
        time.sleep(0.3)
        assert client.get("/v1/cohorts", headers={"X-API-Key": keys["A"]}).status_code == 200


def _access_app(app: Any, serve_config: Any, tmp_path: Path, **log_options: Any) -> tuple[Any, Path]:
    from wsi_ssl.serve.app import create_app

    log = tmp_path / "logs" / "access.log"
    cfg = serve_config.model_copy(update={"access_log": log, **log_options})
    return create_app(cfg, app.state.serve), log


def test_access_log_is_private_and_caps_every_field(app: Any, serve_config: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from wsi_ssl.serve.access_log import MAX_FIELD_CHARS

    served, log = _access_app(app, serve_config, tmp_path)
    with TestClient(served) as client:
        assert client.get("/v1/" + "x" * 60_000).status_code == 401  # no key: refused, still logged
        assert client.get("/v1/cohorts", headers={"X-API-Key": "k" * 50_000}).status_code == 401
        served.state.access_log.sync()
    assert log.stat().st_mode & 0o777 == 0o600
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and all(len(line) < 4 * MAX_FIELD_CHARS for line in lines)
    first = json.loads(lines[0])
    assert first["endpoint"].startswith("/v1/xxx") and "truncated" in first["endpoint"]


def test_access_log_rotates_by_size(app: Any, serve_config: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    served, log = _access_app(app, serve_config, tmp_path, access_log_max_bytes=1024, access_log_backups=2)
    with TestClient(served) as client:
        for _ in range(30):  # ~150 bytes a line: about 5 files' worth
            client.get("/v1/health")
        served.state.access_log.sync()
    names = sorted(p.name for p in log.parent.iterdir())
    assert names == ["access.log", "access.log.1", "access.log.2"]
    for p in log.parent.iterdir():
        assert p.stat().st_size <= 1024 and p.stat().st_mode & 0o777 == 0o600
        assert all(json.loads(line)["endpoint"] == "/v1/health" for line in p.read_text().splitlines())


def test_slide_metadata_shows_no_server_paths(client: Any, keys: dict[str, Any], cohorts: dict[str, Path]) -> None:
    import numpy as np

    folder = cohorts["A"]
    attrs = {
        "slide_id": "p1",
        "encoder": "tiny",
        "encoder_sha256": "ab" * 32,
        "mpp": 0.5,
        "tile_size": 224,
        "tile_store": str(folder / "stores" / "p1.zarr"),  # inside the cohort: shown relative to it
        "source": "/data/secret/slides/p1.svs",  # anywhere else: not shown
        "remote": "s3://lab-bucket/raw/p1.svs",
        "note": "stained 2026/11",
    }
    write_features(folder / "p1.h5", np.zeros((2, 8), np.float32), np.zeros((2, 2), np.int64), attrs)
    meta = client.get("/v1/cohorts/A/slides/p1", headers={"X-API-Key": keys["A"]}).json()
    assert meta["attrs"]["tile_store"] == "stores/p1.zarr"
    assert meta["attrs"]["source"] is None and meta["attrs"]["remote"] is None
    assert meta["attrs"]["note"] == "stained 2026/11"
    assert str(folder) not in json.dumps(meta)


@pytest.mark.parametrize("path", ["/v1/cohorts/", "/v1/health/", "/v1/cohorts/A/slides/"])
def test_no_redirect_is_built_from_the_host_header(client: Any, keys: dict[str, Any], path: str) -> None:
    r = client.get(path, headers={"X-API-Key": keys["all"], "Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers
    assert "evil.example" not in r.text


def test_openapi_states_what_the_server_enforces(client: Any, keys: dict[str, Any]) -> None:
    from wsi_ssl.serve.app import OPENAPI_PATH
    from wsi_ssl.serve.config import MAX_PAGE_LIMIT, LimitsConfig

    doc = json.loads(OPENAPI_PATH.read_text())
    tiles = doc["paths"]["/v1/cohorts/{cohort}/slides/{slide_id}/tiles"]["get"]
    params = {p["name"]: p["schema"] for p in tiles["parameters"]}
    assert params["limit"]["anyOf"][0]["maximum"] == MAX_PAGE_LIMIT == LimitsConfig().max_page_size == 1000
    assert params["slide_id"]["maxLength"] == 252
    hdr = {"X-API-Key": keys["all"]}
    check_error(client.get("/v1/cohorts/A/slides/a1/tiles?limit=1001", headers=hdr), 422, "limit", "1000")
    predict = doc["paths"]["/v1/cohorts/{cohort}/slides/{slide_id}/predict"]["post"]
    assert {"413", "503"} <= set(predict["responses"])


def test_serve_refuses_to_start_on_a_corrupt_keys_file(tmp_path: Path) -> None:
    import argparse

    from wsi_ssl.config import ConfigError
    from wsi_ssl.serve.command import register

    (tmp_path / "keys.json").write_text('{"keys": [')
    config = tmp_path / "serve.yaml"
    config.write_text(f"keys_file: {tmp_path / 'keys.json'}\naccess_log: null\n")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--config", str(config)])
    with pytest.raises(ConfigError, match="keys.json"):
        args.func(args)
