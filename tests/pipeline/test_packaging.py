"""The default configs and pipeline files ship inside the package and are found from anywhere.

Documented commands say ``--config configs/pretrain/tiny_cpu.yaml`` and ``wsi-ssl run
pipelines/quickstart.yaml``; a pip-installed wheel or a container whose working directory is not
the checkout has no such folders beside it, so those paths resolve to the packaged copies
(``wsi_ssl.resources``), while a user's own file of the same relative name still wins.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import wsi_ssl
from wsi_ssl.config import ConfigError, read_yaml
from wsi_ssl.pipeline.config import load_pipeline
from wsi_ssl.pipeline.layout import Run
from wsi_ssl.resources import package_root, packaged_path, resolve_config_path

PACKAGE_DIR = Path(wsi_ssl.__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent


def test_quickstart_finds_its_stage_configs_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_pipeline("pipelines/quickstart.yaml", out=str(tmp_path / "run"))
    run = Run(cfg)
    for stage in (cfg.tile, cfg.pretrain, cfg.embed, *cfg.mil.values()):
        path = run.config_path(stage)
        assert path is not None and path.is_file() and path.is_relative_to(package_root().resolve()), path
    assert read_yaml("configs/pretrain/tiny_cpu.yaml")["method"]


def test_a_users_own_file_wins_and_a_missing_one_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "configs" / "tile" / "default.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("mpp: 2.0\n")
    assert resolve_config_path("configs/tile/default.yaml") == Path("configs/tile/default.yaml")
    assert read_yaml("configs/tile/default.yaml") == {"mpp": 2.0}
    with pytest.raises(ConfigError, match="configs/mil/no_such.yaml"):
        read_yaml("configs/mil/no_such.yaml")
    with pytest.raises(ValueError, match="not in a packaged folder"):
        packaged_path("tests", "x.yaml")


def test_checkout_links_reach_the_packaged_folders() -> None:
    for name in ("configs", "pipelines"):
        link = SOURCE_ROOT / name
        if not link.exists():
            pytest.skip("not a checkout")
        assert link.resolve() == packaged_path(name).resolve()


def _build_wheel(out: Path) -> Path:
    """``pip wheel`` of a copy of the sources (the checkout is left as it is: no build/ folder)."""
    src = out / "src"
    shutil.copytree(PACKAGE_DIR, src / "wsi_ssl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(SOURCE_ROOT / name, src / name)
    try:  # offline and fast when this environment has a recent setuptools; else pip's isolated build
        isolated = int(importlib.metadata.version("setuptools").split(".")[0]) < 68
    except importlib.metadata.PackageNotFoundError:
        isolated = True
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out / "dist"), str(src)]
    done = subprocess.run(
        cmd + ([] if isolated else ["--no-build-isolation"]), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return next((out / "dist").glob("wsi_ssl-*.whl"))


def test_wheel_ships_the_configs_and_finds_them_when_installed(tmp_path: Path) -> None:
    if not (SOURCE_ROOT / "pyproject.toml").is_file():
        pytest.skip("not a checkout")
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        p.relative_to(SOURCE_ROOT).as_posix()
        for pattern in ("configs/**/*.yaml", "pipelines/*.yaml")
        for p in PACKAGE_DIR.glob(pattern)
    }
    assert shipped and "wsi_ssl/pipelines/quickstart.yaml" in shipped
    assert shipped <= names, f"not in the wheel: {sorted(shipped - names)}"
    assert "wsi_ssl/serve/openapi.json" in names

    site = tmp_path / "site"  # a pure-Python wheel unpacked is an installed package
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import wsi_ssl; from wsi_ssl.pipeline.config import load_pipeline; from wsi_ssl.pipeline.layout import Run; "
        "cfg = load_pipeline('pipelines/quickstart.yaml'); print(wsi_ssl.__file__); print(Run(cfg).config_path(cfg.tile))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    module, tile_config = done.stdout.split()
    assert Path(module).is_relative_to(site) and Path(tile_config).is_relative_to(site.resolve())
    assert yaml.safe_load(Path(tile_config).read_text()) == yaml.safe_load(
        packaged_path("configs", "tile", "default.yaml").read_text()
    )
