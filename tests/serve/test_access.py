"""Keys: 401 without one, scoping that cannot be told apart from absence, and the access log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wsi_ssl.serve.keys import add_key, hash_key, read_keys, revoke_key

SLIDE_PATHS = [
    "/v1/cohorts/{c}/slides/{s}",
    "/v1/cohorts/{c}/slides/{s}/embedding",
    "/v1/cohorts/{c}/slides/{s}/tiles",
]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "wsk_not-a-real-key"}])
@pytest.mark.parametrize("path", ["/v1/cohorts", "/v1/models", "/v1/cohorts/A/slides", "/v1/cohorts/A/slides/a1/tiles"])
def test_missing_or_wrong_key_is_401(client: Any, path: str, headers: dict[str, str]) -> None:
    r = client.get(path, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "WWW-Authenticate" in r.headers


def test_post_endpoints_need_a_key(client: Any) -> None:
    assert client.post("/v1/cohorts/A/slides/a1/predict", json={"model": "meanpool"}).status_code == 401
    assert client.post("/v1/embed", files=[("files", ("t.png", b"x", "image/png"))]).status_code == 401


@pytest.mark.parametrize("template", SLIDE_PATHS)
def test_other_cohorts_slide_is_answered_as_a_missing_one(client: Any, keys: dict[str, Any], template: str) -> None:
    """Key A asking for B's slide gets byte-for-byte what it gets for a slide that does not exist."""
    hdr = {"X-API-Key": keys["A"]}
    foreign = client.get(template.format(c="B", s="b1"), headers=hdr)
    missing_in_b = client.get(template.format(c="B", s="b1x"), headers={"X-API-Key": keys["B"]})
    no_cohort = client.get(template.format(c="Z", s="b1"), headers=hdr)
    assert foreign.status_code == missing_in_b.status_code == no_cohort.status_code == 404
    assert foreign.content == no_cohort.content
    assert foreign.json()["detail"] == missing_in_b.json()["detail"].replace("b1x", "b1")
    assert client.get(template.format(c="B", s="b1"), headers={"X-API-Key": keys["B"]}).status_code == 200


def test_other_cohort_listing_and_predict_look_absent(client: Any, keys: dict[str, Any]) -> None:
    hdr = {"X-API-Key": keys["A"]}
    foreign, absent = (
        client.get("/v1/cohorts/B/slides", headers=hdr),
        client.get("/v1/cohorts/nope/slides", headers=hdr),
    )
    assert foreign.status_code == absent.status_code == 404
    assert foreign.json()["detail"].replace("'B'", "'nope'") == absent.json()["detail"]
    foreign = client.post("/v1/cohorts/B/slides/b1/predict", json={"model": "meanpool"}, headers=hdr)
    missing = client.post("/v1/cohorts/A/slides/b1/predict", json={"model": "meanpool"}, headers=hdr)
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content


def test_access_log_records_requests_never_keys(client: Any, app: Any, keys: dict[str, Any], serve_config: Any) -> None:
    client.get("/v1/cohorts/A/slides/a1/tiles?limit=5", headers={"X-API-Key": keys["A"]})
    client.get("/v1/cohorts/B/slides/b1", headers={"X-API-Key": keys["A"]})
    client.get("/v1/cohorts", headers={"X-API-Key": "wsk_wrong"})
    app.state.access_log.sync()
    text = Path(serve_config.access_log).read_text()
    for key in (keys["A"], keys["B"], keys["all"], "wsk_wrong"):
        assert key not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["key_id"], r["endpoint"], r["cohort"], r["slide"], r["status"]) for r in records] == [
        ("study-a", "/v1/cohorts/{cohort}/slides/{slide_id}/tiles", "A", "a1", 200),
        ("study-a", "/v1/cohorts/{cohort}/slides/{slide_id}", "B", "b1", 404),
        (None, "/v1/cohorts", None, None, 401),
    ]
    assert all(r["time"].endswith("+00:00") and r["ms"] >= 0 for r in records)


def test_keys_file_stores_only_hashes_and_changes_apply_without_restart(client: Any, keys: dict[str, Any]) -> None:
    path = keys["path"]
    stored = path.read_text()
    assert keys["A"] not in stored and hash_key(keys["A"]) in stored
    assert path.stat().st_mode & 0o777 == 0o600
    new = add_key(path, "study-late", ["B"])
    assert client.get("/v1/cohorts", headers={"X-API-Key": new}).json() == {"cohorts": [{"name": "B", "n_slides": 1}]}
    revoke_key(path, "study-a")
    assert client.get("/v1/cohorts", headers={"X-API-Key": keys["A"]}).status_code == 401
    assert [k.key_id for k in read_keys(path)] == ["study-b", "lab", "study-late"]


def test_serve_keys_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from wsi_ssl.serve.command import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    keys_file = tmp_path / "k.json"
    args = parser.parse_args(
        ["serve-keys", "add", "--keys-file", str(keys_file), "--id", "study-x", "--cohort", "A", "--cohort", "B"]
    )
    assert args.func(args) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("wsk_") and read_keys(keys_file)[0].sha256 == hash_key(key)
    assert read_keys(keys_file)[0].cohorts == ("A", "B")
    dup = parser.parse_args(["serve-keys", "add", "--keys-file", str(keys_file), "--id", "study-x", "--cohort", "A"])
    assert dup.func(dup) == 2 and "already exists" in capsys.readouterr().err


def test_serve_command_writes_openapi_and_rejects_bad_config(tmp_path: Path) -> None:
    import argparse

    from wsi_ssl.config import ConfigError
    from wsi_ssl.serve.app import OPENAPI_PATH
    from wsi_ssl.serve.command import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "openapi.json"
    args = parser.parse_args(["serve", "--write-openapi", str(out)])
    assert args.func(args) == 0 and json.loads(out.read_text()) == json.loads(OPENAPI_PATH.read_text())
    bad = tmp_path / "serve.yaml"
    bad.write_text("cohorts: {A: /tmp}\nembedding_model: nope\nlimits: {max_page_size: 0}\n")
    args = parser.parse_args(["serve", "--config", str(bad)])
    with pytest.raises(ConfigError) as err:
        args.func(args)
    assert "limits.max_page_size" in str(err.value)
