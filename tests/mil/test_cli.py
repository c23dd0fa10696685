"""``wsi-ssl mil train`` / ``predict`` end to end on tiny cohorts, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from wsi_ssl.cli import main
from wsi_ssl.mil.bags import load_bags
from wsi_ssl.mil.loading import load_mil_model
from wsi_ssl.mil.losses import fit_time_bins

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "mil"
FAST = [
    "--set",
    "aggregator.hidden_dim=16",
    "--set",
    "aggregator.attn_dim=8",
    "--set",
    "data.batch_size=8",
    "--set",
    "eval.bootstrap=20",
    "--set",
    "train.lr=0.01",
    "--set",
    "train.num_threads=1",
    "--set",
    "eval.heatmaps=2",
    "--epochs",
    "8",
]


def _train(tmp_path: Path, df: pd.DataFrame, feats: Path, *extra: str) -> Path:
    table, run = tmp_path / "slides.csv", tmp_path / "run"
    df.to_csv(table, index=False)
    assert (
        main(
            [
                "mil",
                "train",
                "--features",
                str(feats),
                "--slides",
                str(table),
                "--out",
                str(run),
                "--folds",
                "3",
                *FAST,
                *extra,
            ]
        )
        == 0
    )
    return run


def test_clam_files_train_and_predict_end_to_end(tmp_path: Path, make_cohort, capsys) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=24, slides_per_patient=2, clam_style=True)
    df.loc[df["patient_id"] == "P000", "split"] = "test"
    df.loc[df["patient_id"] == "P001", "split"] = "test"
    run = _train(
        tmp_path, df, feats, "--config", str(CONFIGS / "abmil_biomarker.yaml"), "--set", "task.label_column=label"
    )
    assert "auroc" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_bags"] == 22 and metrics["n_test_bags"] == 2  # one bag per patient
    assert metrics["oof"]["auroc"]["value"] > 0.8  # the label is carried by a few strong tiles
    oof = pd.read_csv(run / "oof_predictions.csv")
    assert sorted(oof["key"]) == sorted(df.loc[df["split"] != "test", "patient_id"].unique())
    assert (run / "plots" / "oof_roc.png").stat().st_size > 0
    assert len(list((run / "heatmaps").glob("*.png"))) >= 2

    # predict == the loader's ensemble == the test predictions written during training
    out = tmp_path / "pred.csv"
    test_table = tmp_path / "test_slides.csv"
    df[df["split"] == "test"].to_csv(test_table, index=False)
    assert (
        main(
            [
                "mil",
                "predict",
                "--model",
                str(run),
                "--features",
                str(feats),
                "--slides",
                str(test_table),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    pred = pd.read_csv(out).set_index("key")
    during = pd.read_csv(run / "test_predictions.csv").set_index("key")
    np.testing.assert_allclose(pred.loc[during.index, "prob_pos"], during["prob_pos"], atol=1e-5)
    ensemble, meta = load_mil_model(run)
    assert len(ensemble.models) == 3 and meta["classes"] == ["neg", "pos"]
    bag = load_bags(df[df["patient_id"] == "P000"], feats, np.zeros(2), "patient")[0]
    p = ensemble.predict_bag(bag.features)["prob"]
    assert float(p[1]) == pytest.approx(float(pred.loc["P000", "prob_pos"]), abs=1e-5)

    # Bounded memory: bags read one at a time (patients of two slides kept whole) give the same rows.
    all_table, whole, one_by_one = tmp_path / "all.csv", tmp_path / "whole.csv", tmp_path / "one.csv"
    df.to_csv(all_table, index=False)
    base = ["mil", "predict", "--model", str(run), "--features", str(feats), "--slides", str(all_table)]
    assert main([*base, "--out", str(whole)]) == 0
    assert main([*base, "--out", str(one_by_one), "--max-bags-in-memory", "1", "--batch-size", "3"]) == 0
    got = pd.read_csv(one_by_one)
    assert list(got["key"]) == list(df["patient_id"].unique())
    pd.testing.assert_frame_equal(got, pd.read_csv(whole), atol=1e-6)
    assert main([*base, "--out", str(tmp_path / "x.csv"), "--device", "gpu0"]) == 2
    assert "--device 'gpu0'" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("loss", ["cox", "discrete"])
def test_survival_run_writes_km_and_fold_bins_come_from_training_bags(tmp_path: Path, make_cohort, loss: str) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=30)
    run = _train(
        tmp_path, df, feats, "--config", str(CONFIGS / "abmil_survival.yaml"), "--set", f"task.survival_loss={loss}"
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"c_index", "uno_c", "td_auc", "ibs"} <= set(metrics["oof"])
    assert (run / "plots" / "oof_km.png").is_file()
    meta = json.loads((run / "model.json").read_text())
    times = dict(zip(df["patient_id"], df["time"]))
    events = dict(zip(df["patient_id"], df["event"]))
    for fold in meta["folds"]:
        info = json.loads((run / "folds" / f"fold_{fold['index']}" / "fold.json").read_text())
        edges = load_file(str(run / fold["weights"]))["bin_edges"].numpy()
        if loss == "discrete":
            keys = info["train_keys"]
            expected = fit_time_bins(
                np.array([times[k] for k in keys]), np.array([events[k] for k in keys]), meta["n_bins"]
            )
            np.testing.assert_allclose(edges, expected.astype(np.float32))
        else:
            assert edges.size == 0 and len(fold["baseline_times"]) > 0


def test_regression_transformer_and_resume(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=18)
    run = _train(
        tmp_path,
        df,
        feats,
        "--config",
        str(CONFIGS / "abmil_regression.yaml"),
        "--set",
        "task.label_column=score",
        "--set",
        "aggregator.kind=transformer",
        "--set",
        "aggregator.n_heads=2",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"r2", "pearson_r", "mae"} <= set(metrics["oof"])
    weights = run / "folds" / "fold_0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    _train(
        tmp_path,
        df,
        feats,
        "--config",
        str(CONFIGS / "abmil_regression.yaml"),
        "--set",
        "task.label_column=score",
        "--set",
        "aggregator.kind=transformer",
        "--set",
        "aggregator.n_heads=2",
    )
    assert weights.stat().st_mtime_ns == stamp  # finished folds are not retrained
    assert json.loads((run / "metrics.json").read_text())["oof"]["r2"]["value"] == pytest.approx(
        metrics["oof"]["r2"]["value"]
    )


def test_bad_inputs_exit_2_with_the_reason(tmp_path: Path, make_cohort, capsys) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=12)
    table = tmp_path / "s.csv"
    df.drop(columns=["event"]).to_csv(table, index=False)
    assert (
        main(
            [
                "mil",
                "train",
                "--features",
                str(feats),
                "--slides",
                str(table),
                "--out",
                str(tmp_path / "r"),
                "--set",
                "task.kind=survival",
            ]
        )
        == 2
    )
    assert "'time' and 'event'" in capsys.readouterr().err
    assert (
        main(
            [
                "mil",
                "train",
                "--features",
                str(feats),
                "--slides",
                str(table),
                "--out",
                str(tmp_path / "r"),
                "--set",
                "aggregator.kind=nope",
            ]
        )
        == 2
    )
    assert "aggregator.kind" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_heatmap_over_a_real_slide_thumbnail(tmp_path: Path, shared_data: Path) -> None:
    from wsi_ssl.mil.heatmaps import slide_heatmap

    slide = shared_data / "wsi" / "CMU-1-Small-Region.svs"
    xy = np.stack(np.meshgrid(np.arange(0, 2000, 256), np.arange(0, 2800, 256)), -1).reshape(-1, 2)
    scores = torch.softmax(torch.randn(len(xy)), 0).numpy()
    written = slide_heatmap(xy, scores, tmp_path / "h.png", tile_px=256, slide_path=slide, top_k=4)
    assert Path(written["heatmap"]).stat().st_size > 10_000 and Path(written["top_tiles"]).is_file()
    top = pd.read_csv(written["top_tiles_csv"])
    np.testing.assert_allclose(top["score"], sorted(scores, reverse=True)[:4], rtol=1e-5)


def test_resume_retrains_a_fold_whose_config_changed(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=12)
    run = _train(tmp_path, df, feats, "--set", "aggregator.kind=mean", "--set", "eval.plots=false")
    weights = run / "folds" / "fold_0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    _train(
        tmp_path,
        df,
        feats,
        "--set",
        "aggregator.kind=mean",
        "--set",
        "eval.plots=false",
        "--set",
        "train.weight_decay=0.5",
    )
    assert weights.stat().st_mtime_ns != stamp


def test_features_of_two_encoders_are_never_mixed(tmp_path: Path, make_cohort, capsys) -> None:  # type: ignore[no-untyped-def]
    """Same width, different weights (UNI and Phikon-v2 are both 1024-d): refused, in train and in predict."""
    import h5py

    feats, df = make_cohort(tmp_path, n_patients=12)
    for sid in df["slide_id"]:
        with h5py.File(feats / f"{sid}.h5", "a") as f:
            f.attrs["encoder"], f.attrs["encoder_sha256"] = "uni", "a" * 64
    run = _train(
        tmp_path, df, feats, "--config", str(CONFIGS / "abmil_biomarker.yaml"), "--set", "task.label_column=label"
    )
    assert json.loads((run / "model.json").read_text())["encoder"]["encoder_sha256"] == "a" * 64

    other = df["slide_id"].iloc[3]
    with h5py.File(feats / f"{other}.h5", "a") as f:
        f.attrs["encoder"], f.attrs["encoder_sha256"] = "phikon-v2", "b" * 64
    table = tmp_path / "slides.csv"
    args = [
        "mil",
        "train",
        "--features",
        str(feats),
        "--slides",
        str(table),
        "--out",
        str(tmp_path / "run2"),
        "--folds",
        "3",
        *FAST,
        "--config",
        str(CONFIGS / "abmil_biomarker.yaml"),
        "--set",
        "task.label_column=label",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{other}: embedded by phikon-v2" in err and "uni (weights sha256 aaaaaaaaaaaa)" in err
    one = tmp_path / "one.csv"
    df[df["slide_id"] == other].to_csv(one, index=False)
    assert (
        main(
            [
                "mil",
                "predict",
                "--model",
                str(run),
                "--features",
                str(feats),
                "--slides",
                str(one),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "but the model by uni" in capsys.readouterr().err


def test_a_survival_run_with_covariates_prints_no_third_party_noise(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    """A fresh process, as a user runs it: our progress and summary lines, no library warnings
    (torchsurv's torch.jit.script deprecation at import) or library info lines (numexpr)."""
    import subprocess
    import sys

    feats, df = make_cohort(tmp_path, n_patients=20)
    df["age"] = np.random.default_rng(0).normal(60, 10, len(df)).round()
    table = tmp_path / "slides.csv"
    df.to_csv(table, index=False)
    args = ["--features", str(feats), "--slides", str(table), "--out", str(tmp_path / "run"), "--folds", "3"]
    args += ["--config", str(CONFIGS / "abmil_survival.yaml"), *FAST, "--set", "data.covariates=[age]"]
    args += ["--set", "model.fusion=late"]
    done = subprocess.run(
        [sys.executable, "-m", "wsi_ssl.cli", "mil", "train", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr and "numexpr" not in done.stderr, done.stderr[-3000:]
    assert "comparison (C-index, out of fold)" in done.stdout + done.stderr


def test_fold_metric_of_a_resample_without_comparable_pairs_is_nan_and_silent() -> None:
    import warnings

    from wsi_ssl.mil.tasks.registry import get_task

    tied = pd.DataFrame({"event": [1, 1], "time": [2.0, 2.0], "risk": [0.1, 0.2]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(get_task("survival").fold_metric(tied))
