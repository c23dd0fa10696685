"""Bad input gets a 4xx JSON error naming the problem, and the server keeps serving."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from serve_helpers import check_error, make_slide, png_bytes

TILES = "/v1/cohorts/A/slides/a1/tiles"


@pytest.fixture()
def hdr(keys: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": keys["all"]}


@pytest.mark.parametrize(
    "query,status,words",
    [
        ("offset=-1", 422, ["offset", "greater than or equal to 0"]),
        ("limit=0", 422, ["limit"]),
        ("limit=abc", 422, ["limit", "integer"]),
        ("offset=1.5", 422, ["offset"]),
        ("limit=6000", 422, ["limit", "1000"]),
        ("limit=21", 400, ["limit 21", "maximum page size of 20"]),
        ("offset=38", 400, ["offset 38", "37 tiles"]),
    ],
)
def test_bad_pagination(client: Any, hdr: dict[str, str], query: str, status: int, words: list[str]) -> None:
    check_error(client.get(f"{TILES}?{query}", headers=hdr), status, *words)
    assert (
        client.get(f"{TILES}?offset=37", headers=hdr).json()["features"] == []
    )  # the end itself is a valid, empty page


def test_bad_slide_list_pagination(client: Any, hdr: dict[str, str]) -> None:
    check_error(client.get("/v1/cohorts/A/slides?offset=4", headers=hdr), 400, "offset 4", "3 slides")


@pytest.mark.parametrize("slide", ["nope", "..%2Fcohort_b%2Fb1", ".hidden", "a1.h5"])
def test_unknown_slide(client: Any, hdr: dict[str, str], slide: str) -> None:
    check_error(client.get(f"/v1/cohorts/A/slides/{slide}", headers=hdr), 404, "not found")


def test_unacceptable_accept_header(client: Any, hdr: dict[str, str]) -> None:
    check_error(client.get(TILES, headers={**hdr, "Accept": "text/html"}), 406, "text/html", "application/x-npy")


def _upload(client: Any, hdr: dict[str, str], *files: tuple[str, bytes, str]) -> Any:
    return client.post("/v1/embed", files=[("files", f) for f in files], headers=hdr)


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.mark.parametrize(
    "upload,status,words",
    [
        (("notes.txt", b"this is not an image", "text/plain"), 415, ["notes.txt", "not a PNG or JPEG"]),
        (("fake.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png"), 415, ["fake.png"]),
        (("anim.gif", _gif(), "image/gif"), 415, ["anim.gif", "GIF", "only PNG and JPEG"]),
        (("cut.png", png_bytes(32)[:200], "image/png"), 400, ["cut.png", "damaged"]),
        (("empty.png", b"", "image/png"), 400, ["empty.png", "empty"]),
        (("big.png", png_bytes(96), "image/png"), 413, ["big.png", "limit is 20000 bytes"]),
    ],
)
def test_bad_uploads(
    client: Any, hdr: dict[str, str], upload: tuple[str, bytes, str], status: int, words: list[str]
) -> None:
    check_error(_upload(client, hdr, upload), status, *words)


def test_image_over_pixel_limit_is_refused_before_decoding(
    client: Any, hdr: dict[str, str], app: Any, serve_config: Any
) -> None:
    import dataclasses

    from fastapi.testclient import TestClient

    from wsi_ssl.serve.app import create_app

    buf = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buf, format="PNG")  # tiny file, 90,000 pixels, not a tile
    assert len(buf.getvalue()) < 20000
    check_error(
        _upload(client, hdr, ("huge.png", buf.getvalue(), "image/png")), 413, "huge.png", "300x300", "64x64 pixels"
    )
    cfg = serve_config.model_copy(update={"limits": serve_config.limits.model_copy(update={"max_image_pixels": 1000})})
    with TestClient(create_app(cfg, dataclasses.replace(app.state.serve, config=cfg))) as small:
        r = _upload(small, hdr, ("t.png", png_bytes(40), "image/png"))
    check_error(r, 413, "t.png", "40x40", "limit is 1000 pixels per image")


def test_too_many_tiles(client: Any, hdr: dict[str, str]) -> None:
    tiles = [(f"t{i}.png", png_bytes(32, seed=i), "image/png") for i in range(5)]
    check_error(_upload(client, hdr, *tiles), 400, "5 tiles", "limit is 4")


def test_request_body_over_limit(hdr: dict[str, str], app: Any, serve_config: Any) -> None:
    from fastapi.testclient import TestClient

    from wsi_ssl.serve.app import create_app

    limits = serve_config.limits.model_copy(update={"max_request_bytes": 2048})
    small = create_app(serve_config.model_copy(update={"limits": limits}), app.state.serve)
    with TestClient(small) as client:
        r = client.post(
            "/v1/embed", content=b"x" * 100_000, headers={**hdr, "Content-Type": "multipart/form-data; boundary=b"}
        )
    check_error(r, 413, "100000 bytes", "limit is 2048")


def test_embed_without_files(client: Any, hdr: dict[str, str]) -> None:
    check_error(client.post("/v1/embed", data={"other": "x"}, headers=hdr), 422, "files")


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, ["body", "JSON"]),
        ({"json": {}}, ["body.model", "required"]),
        ({"json": {"model": 3}}, ["body.model", "string"]),
        ({"json": {"model": "meanpool", "extra": 1}}, ["extra"]),
        ({"json": {"model": "nope"}}, ["'nope' is not loaded", "meanpool"]),
        ({"json": ["meanpool"]}, ["body"]),
    ],
)
def test_malformed_predict_body(client: Any, hdr: dict[str, str], kwargs: dict[str, Any], words: list[str]) -> None:
    r = client.post("/v1/cohorts/A/slides/a1/predict", headers={**hdr, **kwargs.pop("headers", {})}, **kwargs)
    check_error(r, 422, *words)


def test_predict_refuses_features_that_do_not_fit(client: Any, hdr: dict[str, str], cohorts: dict[str, Any]) -> None:
    make_slide(cohorts["A"], "wide", 6, seed=9, dim=5)
    check_error(
        client.post("/v1/cohorts/A/slides/wide/predict", json={"model": "meanpool"}, headers=hdr),
        409,
        "8-dimensional",
        "5",
    )
    check_error(
        client.post("/v1/cohorts/A/slides/a2/predict", json={"model": "meanpool"}, headers=hdr), 409, "no tiles"
    )
    body = client.get("/v1/cohorts/A/slides/wide/embedding", headers=hdr).json()
    assert body["aggregator"] is None and len(body["mean"]) == 5  # the mean is served even so


def test_unknown_route_and_method_are_json(client: Any, hdr: dict[str, str]) -> None:
    check_error(client.get("/v1/nothing-here", headers=hdr), 404, "Not Found")
    check_error(client.delete("/v1/cohorts", headers=hdr), 405, "Method Not Allowed")


def test_server_keeps_serving_after_bad_input(client: Any, hdr: dict[str, str]) -> None:
    for _ in range(3):
        _upload(client, hdr, ("x.txt", b"nope", "text/plain"))
        client.get(f"{TILES}?limit=-5", headers=hdr)
        client.post(
            "/v1/cohorts/A/slides/a1/predict", content=b"[", headers={**hdr, "Content-Type": "application/json"}
        )
    assert client.get("/v1/health").status_code == 200
    page = client.get(f"{TILES}?limit=2", headers=hdr).json()
    assert np.asarray(page["features"]).shape == (2, 8)


def test_embed_without_an_encoder_is_503(client_factory: Any, hdr: dict[str, str]) -> None:
    client = client_factory({})  # a server configured without encoder or models
    check_error(_upload(client, hdr, ("t.png", png_bytes(32), "image/png")), 503, "no encoder")
    check_error(
        client.post("/v1/cohorts/A/slides/a1/predict", json={"model": "meanpool"}, headers=hdr), 422, "loaded: none"
    )
