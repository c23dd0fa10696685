"""Two-rank embedding on CPU (Lightning Fabric, gloo) against the same run with one rank.

The ranks must split the slides between them (each slide embedded once, by one rank) and the
feature files must be the very same as those of a one-rank run: same tiles, same rows, same
bytes of features. Both runs use one torch thread per process so the comparison is exact.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
from cluster_helpers import tiny_encoder, wsi_ssl
from helpers import make_store

from wsi_ssl.embed.config import EmbedConfig
from wsi_ssl.embed.runner import run_embed

SIZES = {"a": 21, "b": 9, "c": 14, "d": 5}  # uneven, so the ranks' loads are balanced by tile count


def _features(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path, "r") as f:
            out[path.stem] = (f["features"][:], f["coords"][:])
    return out


def test_two_ranks_embed_disjoint_slides_with_features_identical_to_one_rank(tmp_path: Path) -> None:
    tiles = tmp_path / "tiles"
    for i, (sid, n) in enumerate(SIZES.items()):
        make_store(tiles, sid, n=n, seed=i)
    encoder = tiny_encoder(tmp_path / "enc")
    common = {"tiles": tiles, "encoder": str(encoder), "device": "cpu", "batch_size": 8, "workers": 0, "threads": 1}

    one = run_embed(EmbedConfig(out=tmp_path / "one", progress=False, **common))  # type: ignore[arg-type]
    assert one.ok and one.slides == len(SIZES)

    done = wsi_ssl(
        "embed",
        "--tiles",
        str(tiles),
        "--encoder",
        str(encoder),
        "--out",
        str(tmp_path / "two"),
        "--device",
        "cpu",
        "--devices",
        "2",
        "--batch-size",
        "8",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # Each rank prints its own summary: two lines whose slides and tiles add up to the cohort's,
    # so no slide was embedded twice or left out.
    per_rank = [(int(s), int(t)) for s, t in re.findall(r"embedded (\d+) slide\(s\), (\d+) tiles", done.stderr)]
    assert len(per_rank) == 2, done.stderr[-3000:]
    assert all(s > 0 for s, _ in per_rank), per_rank
    assert sum(s for s, _ in per_rank) == len(SIZES) and sum(t for _, t in per_rank) == sum(SIZES.values())

    a, b = _features(tmp_path / "one"), _features(tmp_path / "two")
    assert sorted(a) == sorted(b) == sorted(SIZES)
    for sid in SIZES:
        assert a[sid][0].shape == (SIZES[sid], 64)
        np.testing.assert_array_equal(a[sid][1], b[sid][1])
        np.testing.assert_array_equal(a[sid][0], b[sid][0])  # bitwise: same features
