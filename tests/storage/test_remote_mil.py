"""MIL from feature files in a bucket into a run directory in a bucket, and predictions from that
run directory, against moto's S3 server. Reference: the same commands on local copies."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import h5py
import numpy as np
import pandas as pd
import pytest

from wsi_ssl.cli import main
from wsi_ssl.storage import rundir


def _mil_cohort(folder: Path, n: int = 12, dim: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        sid, label = f"S{i:02d}", i % 2
        x = rng.normal(size=(20, dim)).astype(np.float32)
        x[: 4 * label, 0] += 4.0
        with h5py.File(folder / f"{sid}.h5", "w") as f:
            f.create_dataset("features", data=x)
            f.create_dataset("coords", data=np.arange(40, dtype=np.int64).reshape(20, 2))
            f.attrs["slide_id"] = sid
        rows.append({"slide_id": sid, "patient_id": f"P{i:02d}", "label": "pos" if label else "neg"})
    return pd.DataFrame(rows)


def test_mil_trains_from_and_into_a_bucket_and_predicts_from_it(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _mil_cohort(tmp_path / "features")
    fs = fsspec.filesystem("s3")
    fs.put(str(tmp_path / "features") + "/", f"{bucket}/features/", recursive=True)
    fs.invalidate_cache()
    table = tmp_path / "slides.csv"
    df.to_csv(table, index=False)
    fast = ["--folds", "2", "--epochs", "3", "--set", "aggregator.hidden_dim=8", "--set", "aggregator.attn_dim=4"]
    fast += ["--set", "eval.bootstrap=0", "--set", "eval.heatmaps=0", "--set", "train.num_threads=1"]
    fast += ["--set", "eval.plots=false", "--set", "eval.pooled_linear.enabled=false"]  # not what is tested here
    base = ["mil", "train", "--slides", str(table), "--set", "task.label_column=label", *fast]

    published: list[list[str]] = []
    real = rundir.publish_run_dir
    monkeypatch.setattr(rundir, "publish_run_dir", lambda *a, **k: published.append(real(*a, **k)) or published[-1])
    run = f"{bucket}/runs/her2"
    assert main([*base, "--features", f"{bucket}/features", "--out", run]) == 0
    assert main([*base, "--features", str(tmp_path / "features"), "--out", str(tmp_path / "local")]) == 0

    # One upload per file, model.json (what marks a finished run) last.
    names = published[0]
    assert names[-1] == "model.json" and len(names) == len(set(names)) > 4
    local_files = sorted(
        p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local").rglob("*") if p.is_file()
    )
    assert sorted(names) == local_files
    remote = json.loads(fs.cat_file(f"{run}/metrics.json".removeprefix("s3://")))
    local = json.loads((tmp_path / "local" / "metrics.json").read_text())
    assert remote["n_bags"] == local["n_bags"] == 12
    oof_r = pd.read_csv(fs.open(f"{run}/oof_predictions.csv")).sort_values("key")
    oof_l = pd.read_csv(tmp_path / "local" / "oof_predictions.csv").sort_values("key")
    np.testing.assert_allclose(oof_r["prob_pos"], oof_l["prob_pos"], atol=1e-6)

    # Rerunning into the finished run resumes it from the bucket: no fold is trained again, so no
    # fold file is uploaded again (the summary files are rewritten, and model.json still goes last).
    assert main([*base, "--features", f"{bucket}/features", "--out", run]) == 0
    assert published[1][-1] == "model.json"
    assert not [name for name in published[1] if name.startswith("folds/")]

    # predict reads the run dir from the bucket.
    predict = ["mil", "predict", "--features", str(tmp_path / "features"), "--device", "cpu"]
    assert main([*predict, "--model", run, "--out", str(tmp_path / "remote.csv")]) == 0
    assert main([*predict, "--model", str(tmp_path / "local"), "--out", str(tmp_path / "local.csv")]) == 0
    got, ref = pd.read_csv(tmp_path / "remote.csv"), pd.read_csv(tmp_path / "local.csv")
    np.testing.assert_allclose(got["prob_pos"], ref["prob_pos"], atol=1e-6)
    capsys.readouterr()
    assert main([*predict, "--model", f"{bucket}/runs/none", "--out", str(tmp_path / "x.csv")]) == 2
    assert f"{bucket}/runs/none: no model.json" in capsys.readouterr().err
