"""The CPU image, built with podman, tiles and embeds a real slide exactly as the host install does.

Opt-in: building the image takes minutes the first time (docs/containers.md), so this runs only
where ``WSI_SSL_CONTAINER_TESTS=1`` is set and podman is installed; ``.ci/run`` sets it in its own
container step, before the README's test command. A second build of an unchanged tree is a cache
hit, so the image that step built is reused here, not rebuilt.

Inside the container the slide folder is mounted read-only, the encoder's weights come from a
Hugging Face cache mounted at ``HF_HOME`` (random weights for the kaiko-vits16 preset, laid out
as ``hf download`` does), the network is off, and the commands run as the image's non-root user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from wsi_ssl.encoders.registry import get_preset
from wsi_ssl.stores.tile_store import open_tile_store

ROOT = Path(__file__).resolve().parents[2]
ENABLE = "WSI_SSL_CONTAINER_TESTS"
IMAGE = os.environ.get("WSI_SSL_IMAGE", "localhost/wsi-ssl:cpu")
SLIDE = "CMU-1-Small-Region.svs"
PRESET = "kaiko-vits16"
IMAGE_UID = 1000  # the image's user `wsi` (docker/Dockerfile.cpu)

pytestmark = [
    pytest.mark.skipif(
        os.environ.get(ENABLE) != "1",
        reason=f"container tests are opt-in: set {ENABLE}=1 (.ci/run does, in its container step)",
    ),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (apt-get install podman)"),
]


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(ROOT / "docker/containers.conf"))}


def run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """The CPU image of this tree: built by docker/build-image.sh (a cache hit after .ci/run's build)."""
    run(["bash", str(ROOT / "docker/build-image.sh"), "cpu"], env={**podman_env(), "IMAGE": IMAGE})
    return IMAGE


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face cache holding random weights for the kaiko-vits16 preset, as the Hub lays them out."""
    import timm
    from safetensors.torch import save_file

    preset = get_preset(PRESET)
    home = tmp_path_factory.mktemp("hf")
    revision = preset.revision or "0" * 40
    repo = home / "hub" / f"models--{preset.repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snap / "model.safetensors"))
    config = {
        "architecture": "vit_small_patch16_224",
        "num_classes": 0,
        "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.5] * 3, "std": [0.5] * 3},
    }
    (snap / "config.json").write_text(json.dumps(config))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    # Readable by the image's user: safetensors writes its file 0600, and tmp_path_factory makes
    # its folders 0700 (the container sees only this folder, so the parents' modes do not matter).
    for path in [home, *home.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return home


TILE_ARGS = ["--workers", "1", "--no-progress", "--no-qc"]
EMBED_ARGS = ["--encoder", PRESET, "--device", "cpu", "--threads", "2", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def host_run(shared_data: Path, hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tile + embed with the host's install of this tree."""
    out = tmp_path_factory.mktemp("host")
    cli = [str(Path(sys.executable).with_name("wsi-ssl"))]
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    run([*cli, "tile", str(shared_data / "wsi" / SLIDE), "--out", str(out / "tiles"), *TILE_ARGS], env=env)
    run([*cli, "embed", "--tiles", str(out / "tiles"), "--out", str(out / "features"), *EMBED_ARGS], env=env)
    return out


@pytest.fixture(scope="module")
def container_run(image: str, shared_data: Path, hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same two commands in the image: non-root, no network, slides and weights read-only."""
    out = tmp_path_factory.mktemp("container")
    if os.geteuid() == 0:  # rootful podman: container uid 1000 is host uid 1000
        os.chown(out, IMAGE_UID, IMAGE_UID)
        userns: list[str] = []
    else:  # rootless: map the image's user onto the caller
        userns = [f"--userns=keep-id:uid={IMAGE_UID},gid={IMAGE_UID}"]
    base = [
        "podman", "run", "--rm", "--network", "none", *userns,
        "-v", f"{shared_data / 'wsi'}:/data:ro", "-v", f"{hf_home}:/models:ro", "-v", f"{out}:/out",
    ]  # fmt: skip
    env = podman_env()
    run([*base, image, "tile", f"/data/{SLIDE}", "--out", "/out/tiles", *TILE_ARGS], env=env)
    run([*base, image, "embed", "--tiles", "/out/tiles", "--out", "/out/features", *EMBED_ARGS], env=env)
    # Who the commands ran as, and whether the slides could be written to.
    probe = "id -u; touch /data/probe 2>/dev/null && echo data-writable || echo data-read-only"
    (out / "probe.txt").write_text(run([*base, "--entrypoint", "sh", image, "-c", probe], env=env))
    return out


def test_container_runs_as_non_root_with_read_only_data(container_run: Path) -> None:
    uid, data = (container_run / "probe.txt").read_text().split()
    assert int(uid) == IMAGE_UID != 0
    assert data == "data-read-only"
    if os.geteuid() == 0:
        assert (container_run / "features" / "CMU-1-Small-Region.h5").stat().st_uid == IMAGE_UID


def test_container_tiles_equal_host_tiles(host_run: Path, container_run: Path) -> None:
    host = open_tile_store(host_run / "tiles" / "CMU-1-Small-Region.zarr")
    ctr = open_tile_store(container_run / "tiles" / "CMU-1-Small-Region.zarr")
    assert len(host) > 50  # about a third of the 2220x2967 px region is tissue
    np.testing.assert_array_equal(ctr.coords, host.coords)
    np.testing.assert_array_equal(ctr.tissue, host.tissue)
    np.testing.assert_array_equal(ctr.tiles(), host.tiles())
    assert ctr.mpp == host.mpp and ctr.tile_size == host.tile_size == 224


def test_container_features_equal_host_features(host_run: Path, container_run: Path) -> None:
    with (
        h5py.File(host_run / "features" / "CMU-1-Small-Region.h5", "r") as h,
        h5py.File(container_run / "features" / "CMU-1-Small-Region.h5", "r") as c,
    ):
        np.testing.assert_array_equal(c["coords"][:], h["coords"][:])
        assert c["features"].shape == h["features"].shape == (len(h["coords"]), 384)
        np.testing.assert_allclose(c["features"][:], h["features"][:], rtol=1e-4, atol=1e-5)
