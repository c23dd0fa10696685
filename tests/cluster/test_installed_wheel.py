"""A non-editable install runs with its packaged default configs from any directory.

On a cluster the package is pip-installed (in an image, or a venv on shared storage) and jobs
start in their own working directories, with no checkout and no ``configs/`` beside them. Built
as a wheel, installed into a fresh venv (``--no-deps``; the dependencies come from this test
environment through a .pth file) and run through the installed ``wsi-ssl`` script from an empty
directory: the default tile config is found without ``--config``, and ``--config
configs/tile/default.yaml`` resolves to the packaged file.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from cluster_helpers import ROOT, cli_env

from wsi_ssl.resources import packaged_path
from wsi_ssl.stores.tile_store import TileStore
from wsi_ssl.synthetic import write_slide


def _build_wheel(out: Path) -> Path:
    src = out / "src"
    shutil.copytree(ROOT / "wsi_ssl", src / "wsi_ssl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    isolated = int(importlib.metadata.version("setuptools").split(".")[0]) < 68
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out / "dist"), str(src)]
    done = subprocess.run(cmd + ([] if isolated else ["--no-build-isolation"]), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return next((out / "dist").glob("wsi_ssl-*.whl"))


def test_the_installed_wheel_finds_its_configs_from_an_empty_directory(tmp_path: Path) -> None:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not a checkout")
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the venv's own packages
    env = cli_env(PATH=f"{venv / 'bin'}:/usr/bin:/bin")
    done = subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    slide = tmp_path / "slides" / "one.tiff"
    write_slide(slide, width=1024, height=768, mpp=0.5, levels=2, seed=0)
    work = tmp_path / "elsewhere"
    work.mkdir()
    default = yaml.safe_load(packaged_path("configs", "tile", "default.yaml").read_text())
    for extra in ([], ["--config", "configs/tile/default.yaml"]):
        out = tmp_path / f"tiles{len(extra)}"
        argv = [str(venv / "bin" / "wsi-ssl"), "tile", str(slide), "--out", str(out), "--workers", "1", "--no-progress"]
        done = subprocess.run(argv + extra, cwd=work, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        store = TileStore(out / "one.zarr")
        assert store.tile_size == default["tile_size"] and store.mpp == pytest.approx(default["mpp"])
    where = subprocess.run(
        [py, "-c", "import wsi_ssl; print(wsi_ssl.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the installed copy ran, not this checkout
    assert not (work / "configs").exists()
