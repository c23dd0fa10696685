"""A run killed mid-slide leaves no half file under a final name; rerunning finishes the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl.embed.config import EmbedConfig
from wsi_ssl.embed.runner import run_embed
from wsi_ssl.stores.features import read_features

# Runs the real CLI command in a child that SIGKILLs itself right after the first batch of the
# third slide is written: the same state as a node lost mid-run, at a reproducible point.
CHILD = r"""
import argparse, os, signal, sys
from wsi_ssl.stores import features
from wsi_ssl.embed.command import register
real_write = features.FeatureWriter.write
def write_then_die(self, start, feats):
    real_write(self, start, feats)
    if self.path.name == "s2.h5":
        self._file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
features.FeatureWriter.write = write_then_die
import wsi_ssl.embed.runner as runner
runner.FeatureWriter = features.FeatureWriter
parser = argparse.ArgumentParser()
register(parser.add_subparsers(dest="command"))
args = parser.parse_args(["embed", *sys.argv[1:]])
sys.exit(args.func(args))
"""


def test_resume_after_kill(tiny_encoder: Path, store_factory: Callable[..., Any], tmp_path: Path) -> None:
    for i in range(4):
        store_factory(f"s{i}", 10, seed=i)
    out = tmp_path / "feats"
    argv = [
        "--tiles",
        str(tmp_path / "tiles"),
        "--encoder",
        str(tiny_encoder),
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stderr[-2000:]
    finals = sorted(p.name for p in out.glob("*.h5") if not p.name.startswith("."))
    assert finals == ["s0.h5", "s1.h5"]
    assert [p for p in out.iterdir() if ".partial-" in p.name], "the killed slide's temporary file should remain"
    done_before = {name: (out / name).stat().st_mtime_ns for name in finals}

    summary = run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder=str(tiny_encoder),
            out=out,
            batch_size=4,
            workers=0,
            device="cpu",
            progress=False,
        )
    )
    assert summary.ok and summary.slides == 2 and sorted(summary.skipped) == ["s0", "s1"]
    assert {name: (out / name).stat().st_mtime_ns for name in finals} == done_before
    assert not [p for p in out.iterdir() if ".partial-" in p.name]

    clean = tmp_path / "clean"
    run_embed(
        EmbedConfig(
            tiles=tmp_path / "tiles",
            encoder=str(tiny_encoder),
            out=clean,
            batch_size=4,
            workers=0,
            device="cpu",
            progress=False,
        )
    )
    for i in range(4):
        resumed, fresh = read_features(out / f"s{i}.h5"), read_features(clean / f"s{i}.h5")
        np.testing.assert_array_equal(resumed.coords, fresh.coords)
        np.testing.assert_allclose(resumed.features, fresh.features, rtol=1e-5, atol=1e-6)
