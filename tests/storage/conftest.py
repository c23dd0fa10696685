"""A real S3 API on loopback: moto's server mode, started once per test session on 127.0.0.1
(in its own process).

The stages get nothing but the standard environment (``AWS_ENDPOINT_URL`` and dummy credentials),
as a user pointing them at MinIO or Ceph would; no option of ours names the endpoint.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wsi_ssl.synthetic import write_slide

pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e .[test])")
s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e .[remote])")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's server in a process of its own (as MinIO would be): it neither shares the tests' GIL
    nor holds locks in the test process when a test forks a run to kill it."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"moto server did not start on {endpoint}")
            time.sleep(0.05)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    yield endpoint
    mp.undo()
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture()
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (``s3://<name>``)."""
    import fsspec

    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    fsspec.filesystem("s3").invalidate_cache()
    return f"s3://{name}"


@pytest.fixture(scope="session")
def local_slides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two generated JPEG slides (a: 4096 x 3072 px, b: 1536 x 1536) (a JPEG source is what tiles cost bytes on the wire)."""
    d = tmp_path_factory.mktemp("remote-slides")
    write_slide(d / "a.tiff", width=4096, height=3072, mpp=0.5, levels=3, seed=11)
    write_slide(d / "b.tiff", width=1536, height=1536, mpp=0.5, levels=3, seed=12)
    return d


def _upload(local: Path, url: str) -> str:
    import fsspec

    fs, key = fsspec.core.url_to_fs(url)
    fs.put_file(str(local), key)
    fs.invalidate_cache()
    return url


@pytest.fixture()
def upload() -> Callable[[Path, str], str]:
    """Put a local file at an ``s3://`` URL (test modules cannot import conftest by name)."""
    return _upload


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An encoder dir (Contract 2): a random 2-block ViT on 32-px input, 'trained' at 0.5 um/px."""
    import timm
    import torch

    from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder

    kwargs = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 64, "num_heads": 2}
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **kwargs).eval()
    out = tmp_path_factory.mktemp("enc") / "tiny-vit"
    cfg = EncoderConfig(arch="vit_tiny_patch16_224", model_kwargs=kwargs, embed_dim=64, input_size=32, mpp=0.5)
    save_encoder(model, out, cfg)
    return out


TILE = ["--workers", "1", "--no-qc", "--no-progress", "--set", "shard_tiles=16", "--min-tissue", "0.9"]
"""Tiling options of every tiling test: in-process, and sparse kept tiles (min_tissue 0.9) so that
bytes fetched per tile differ clearly from the file's size."""


@pytest.fixture(scope="session")
def tile_args() -> list[str]:
    return list(TILE)


@pytest.fixture(scope="session")
def local_tiles(local_slides: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: both slides tiled from local disk with ``TILE`` (once per session)."""
    from wsi_ssl.cli import main

    out = tmp_path_factory.mktemp("local-tiles")
    assert main(["tile", str(local_slides), "--out", str(out), *TILE]) == 0
    return out


def _run_then_exit(argv: list[str], arm: Callable[[], None]) -> None:
    from wsi_ssl.cli import main

    arm()
    os._exit(main(argv))


@pytest.fixture()
def run_killed() -> Callable[[list[str], Callable[[], None]], int]:
    """Run the CLI with ``argv`` in a forked child that first calls ``arm`` (which patches a writer to
    SIGKILL the child at a chosen point: no exception, no ``finally``, no atexit, as an OOM kill or
    a lost node); returns the child's exit code (-9 when it was killed).

    A fork starts with everything imported, so this costs the run, not a fresh interpreter."""

    def run(argv: list[str], arm: Callable[[], None]) -> int:
        child = multiprocessing.get_context("fork").Process(target=_run_then_exit, args=(argv, arm))
        child.start()
        child.join(120)
        if child.exitcode is None:
            child.kill()
            child.join()
        return int(child.exitcode if child.exitcode is not None else -1)

    return run
