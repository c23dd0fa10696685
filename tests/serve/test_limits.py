"""Resource bounds (issue #18, findings 1-3): no single request takes the server's memory or time."""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import struct
import weakref
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image
from serve_helpers import check_error, png_bytes

PREDICT = "/v1/cohorts/A/slides/a1/predict"


def _solid_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose pixel data is one short row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _upload(client: Any, hdr: dict[str, str], *files: tuple[str, bytes]) -> Any:
    return client.post("/v1/embed", files=[("files", (name, data, "image/png")) for name, data in files], headers=hdr)


def test_tile_larger_than_the_encoder_input_is_413(client: Any, keys: dict[str, Any]) -> None:
    """The fixture encoder takes 32-pixel tiles: 64x64 (twice that) is the largest upload accepted."""
    hdr = {"X-API-Key": keys["all"]}
    big = _solid_png(100, 100)  # 10,000 pixels: within max_image_pixels (65,536) but not a tile
    check_error(_upload(client, hdr, ("big.png", big)), 413, "big.png", "100x100", "64x64", "32-pixel")
    assert _upload(client, hdr, ("ok.png", _solid_png(64, 48))).status_code == 200


def test_image_size_is_read_from_the_header_before_decoding(client: Any, keys: dict[str, Any]) -> None:
    """A header claiming 4096x4096 with no pixel data is refused for its size, not as damaged."""
    r = _upload(client, {"X-API-Key": keys["all"]}, ("bomb.png", _png_header_only(4096, 4096)))
    check_error(r, 413, "bomb.png", "4096x4096")


def test_decoded_pixels_per_request_are_bounded(app: Any, keys: dict[str, Any], serve_config: Any) -> None:
    from fastapi.testclient import TestClient

    from wsi_ssl.serve.app import create_app

    limits = serve_config.limits.model_copy(update={"max_request_pixels": 3 * 48 * 48})
    cfg = serve_config.model_copy(update={"limits": limits})
    small = create_app(cfg, dataclasses.replace(app.state.serve, config=cfg))
    tiles = [(f"t{i}.png", _solid_png(48, 48)) for i in range(4)]
    with TestClient(small) as client:
        r = _upload(client, {"X-API-Key": keys["all"]}, *tiles)
        check_error(r, 413, "9216 pixels", "limit is 6912")
        assert _upload(client, {"X-API-Key": keys["all"]}, *tiles[:3]).status_code == 200


def test_tiles_are_decoded_into_the_batch_one_at_a_time(loaded: Any) -> None:
    """Each decoded image is released before the next one is produced, and results match ``embed``."""
    encoder, _ = loaded
    images = [Image.open(io.BytesIO(png_bytes(40, seed=i))).convert("RGB") for i in range(5)]
    expected = encoder.embed(images)
    alive: list[weakref.ref[Image.Image]] = []
    still_held: list[int] = []

    def decoded() -> Iterator[Image.Image]:
        for i in range(5):
            gc.collect()
            still_held.append(sum(ref() is not None for ref in alive))
            img = Image.open(io.BytesIO(png_bytes(40, seed=i))).convert("RGB")
            alive.append(weakref.ref(img))
            yield img
            del img

    got = encoder.embed_stream(decoded(), n=5)
    assert still_held == [0, 0, 0, 0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_json_body_over_the_predict_limit_is_413(client: Any, keys: dict[str, Any]) -> None:
    """A predict body is a model name: a 300 KB object of 20,000 keys is refused unread."""
    body = json.dumps({"model": "meanpool", **{f"k{i}": i for i in range(20000)}}).encode()
    r = client.post(PREDICT, content=body, headers={"X-API-Key": keys["all"], "Content-Type": "application/json"})
    check_error(r, 413, "limit is 4096 bytes")


def _chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def test_chunked_bodies_are_counted_as_they_stream(app: Any, keys: dict[str, Any], serve_config: Any) -> None:
    """No Content-Length: the limit still holds, counted on the bytes received."""
    from fastapi.testclient import TestClient

    from wsi_ssl.serve.app import create_app

    limits = serve_config.limits.model_copy(update={"max_request_bytes": 8192})
    small = create_app(serve_config.model_copy(update={"limits": limits}), app.state.serve)
    hdr = {"X-API-Key": keys["all"]}
    with TestClient(small) as client:
        r = client.post(
            "/v1/embed", content=_chunks(100_000), headers={**hdr, "Content-Type": "multipart/form-data; boundary=b"}
        )
        check_error(r, 413, "limit is 8192 bytes")
        r = client.post(PREDICT, content=_chunks(20_000), headers={**hdr, "Content-Type": "application/json"})
        check_error(r, 413, "limit is 4096 bytes")
        assert client.post(PREDICT, json={"model": "meanpool"}, headers=hdr).status_code == 200
