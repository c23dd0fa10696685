"""``wsi-ssl mil train --shard I/N`` trains only its folds; ``--merge`` gathers them.

The folds of a cross-validation are independent, so the jobs of an array can each train some
and a last job writes predictions and metrics. Held to the unsharded run: the merged run's
out-of-fold predictions and metrics are the same as those of one ``mil train`` over all folds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wsi_ssl.cli import main
from wsi_ssl.stores.features import write_features

FAST = [
    *("--set", "aggregator.hidden_dim=16", "--set", "aggregator.attn_dim=8", "--set", "data.batch_size=8"),
    *("--set", "eval.bootstrap=10", "--set", "eval.plots=false", "--set", "eval.heatmaps=0"),
    *("--set", "train.num_threads=1", "--set", "task.label_column=label", "--folds", "3", "--epochs", "3"),
]


def _cohort(root: Path, n: int = 18) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    feats = root / "features"
    feats.mkdir(parents=True)
    rows = []
    for p in range(n):
        x = rng.normal(size=(10, 8)).astype(np.float32)
        x[:2, 0] += 4.0 * (p % 2)
        xy = np.stack([np.arange(10) * 256, np.zeros(10)], 1).astype(np.int64)
        attrs = {"slide_id": f"S{p:02d}", "encoder": "test", "encoder_sha256": "", "mpp": 0.5, "tile_size": 256}
        write_features(feats / f"S{p:02d}.h5", x, xy, attrs)
        rows.append({"slide_id": f"S{p:02d}", "patient_id": f"P{p:02d}", "label": "pos" if p % 2 else "neg"})
    table = root / "slides.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return feats, table


def test_fold_shards_then_merge_equal_one_unsharded_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feats, table = _cohort(tmp_path)
    config = str(Path(__file__).resolve().parents[2] / "configs" / "mil" / "abmil_biomarker.yaml")

    def train(out: Path, *extra: str) -> int:
        base = ["mil", "train", "--config", config, "--features", str(feats), "--slides", str(table)]
        return main([*base, "--out", str(out), *FAST, *extra])

    sharded = tmp_path / "sharded"
    assert train(sharded, "--shard", "0/2") == 0
    assert "trained fold(s) 0, 2" in capsys.readouterr().out
    assert sorted(p.name for p in (sharded / "folds").iterdir()) == ["fold_0", "fold_2"]
    assert not (sharded / "metrics.json").exists()

    assert train(sharded, "--merge") == 2  # fold 1 is nobody's yet: named, nothing trained
    assert "fold(s) 1 of 3 are not trained" in capsys.readouterr().err
    assert not (sharded / "folds" / "fold_1").exists()

    with pytest.MonkeyPatch.context() as mp:  # the second job, as a pod of a Kubernetes Indexed Job
        mp.setenv("JOB_COMPLETION_INDEX", "1")
        assert train(sharded, "--shard", "auto/2") == 0
    assert "trained fold(s) 1;" in capsys.readouterr().out

    assert train(sharded, "--merge") == 0
    whole = tmp_path / "whole"
    assert train(whole) == 0
    merged, single = (json.loads((d / "metrics.json").read_text()) for d in (sharded, whole))
    assert merged["folds"] == 3 and merged["oof"] == single["oof"] and merged["per_fold"] == single["per_fold"]
    pd.testing.assert_frame_equal(
        pd.read_csv(sharded / "oof_predictions.csv"), pd.read_csv(whole / "oof_predictions.csv")
    )
