"""Clinical covariates and omics: table reading, the fold-fitted encoder (no leakage), the missing rule."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from wsi_ssl.config import ConfigError
from wsi_ssl.mil.clinical.encoder import SideEncoder
from wsi_ssl.mil.clinical.tables import build_spec, read_omics, side_rows
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.experiment import train_run
from wsi_ssl.mil.loading import load_fold_weights, load_mil_model, read_model_json
from wsi_ssl.mil.predict import predict_run
from wsi_ssl.stores.features import read_features


def _clinical_table(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patients = df["patient_id"].unique()
    age = dict(zip(patients, rng.normal(60, 10, len(patients)).round()))
    stage = dict(zip(patients, rng.choice(["I", "II", "III"], len(patients))))
    df = df.copy()
    df["age"] = df["patient_id"].map(age)
    df["stage"] = df["patient_id"].map(stage)
    df.loc[df["patient_id"].isin(patients[::5]), "age"] = np.nan
    df.loc[df["patient_id"].isin(patients[1::6]), "stage"] = None
    return df


def _omics(patients: list[str], dim: int = 6, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    om = pd.DataFrame(rng.normal(size=(len(patients), dim)), columns=[f"g{j}" for j in range(dim)])
    om.insert(0, "patient_id", patients)
    return om


def test_omics_tables_read_alike_from_csv_parquet_and_h5(tmp_path: Path) -> None:
    om = _omics(["007", "P2", "P3"])
    om.loc[1, "g2"] = np.nan
    om.to_csv(tmp_path / "o.csv", index=False)
    om.to_parquet(tmp_path / "o.parquet")
    with h5py.File(tmp_path / "o.h5", "w") as f:
        f["patient_id"] = np.array(om["patient_id"], dtype="S")
        f["values"] = om.drop(columns="patient_id").to_numpy()
        f["features"] = np.array(om.columns[1:], dtype="S")
    tables = [read_omics(tmp_path / n) for n in ("o.csv", "o.parquet", "o.h5")]
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t, tables[0])
    assert list(tables[0].index) == ["007", "P2", "P3"] and np.isnan(tables[0].loc["P2", "g2"])
    om.iloc[[0, 0]].to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ConfigError, match="listed twice"):
        read_omics(tmp_path / "dup.csv")
    with pytest.raises(ConfigError, match="unsupported format"):
        (tmp_path / "o.xlsx").write_text("x")
        read_omics(tmp_path / "o.xlsx")


def test_encoder_uses_training_rows_only_and_masks_missing_and_unseen_levels() -> None:
    table = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(6)],
            "age": [50.0, 60.0, np.nan, 70.0, 1000.0, 20.0],
            "stage": ["I", "II", "I", None, "III", "II"],
        }
    )
    om = _omics(["P0", "P1", "P2", "P4", "P5"], dim=3).set_index("patient_id")
    spec = build_spec(table, ["age", "stage"], omics=om)
    assert [c.levels for c in spec.covariates] == [None, ["I", "II", "III"]]
    raw = side_rows(table, spec, om)
    train = [0, 1, 2, 3]  # level III and the outlying age 1000 are only in held-out rows
    enc = SideEncoder(spec).eval()
    enc.fit(raw[train])
    assert enc.mean[0].item() == pytest.approx(60.0)  # nanmean of 50, 60, 70: never row 4's 1000
    assert enc.std[0].item() == pytest.approx(np.std([50.0, 60.0, 70.0]), rel=1e-6)
    np.testing.assert_allclose(enc.mean[4:].numpy(), np.nanmean(raw[train][:, 4:], axis=0), rtol=1e-6)
    out = enc(torch.from_numpy(raw))
    assert out.cov_missing.tolist() == [[0, 0], [0, 0], [1, 0], [0, 1], [0, 1], [0, 0]]  # row 4: unseen III
    assert out.cov_values[2, 0] == 0 and out.cov_values[4, 1:].abs().sum() == 0
    assert out.omics_absent.tolist() == [False, False, False, True, False, False]  # P3 has no omics row
    assert out.omics_values[3].abs().sum() == 0 and out.omics_missing[3].tolist() == [1.0, 1.0, 1.0]


@pytest.fixture()
def clinical_run(tmp_path: Path, make_cohort) -> tuple[Path, Path, Path, pd.DataFrame, Path]:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=16)
    df = _clinical_table(df)
    df.to_csv(tmp_path / "slides.csv", index=False)
    patients = sorted(df["patient_id"].unique())
    _omics(patients[1:]).to_csv(tmp_path / "omics.csv", index=False)  # P000 has no omics
    cfg = MilConfig.model_validate(
        {
            "task": {"kind": "survival"},
            "aggregator": {"hidden_dim": 16, "attn_dim": 8},
            "model": {"fusion": "late"},
            "data": {"covariates": ["age", "stage"], "omics": "omics.csv", "batch_size": 8},
            "train": {"epochs": 2, "val_fraction": 0.0},
            "eval": {"folds": 2, "bootstrap": 0, "plots": False, "heatmaps": 0, "compare": False},
        }
    )
    run = tmp_path / "run"
    train_run(cfg, feats, tmp_path / "slides.csv", run)  # omics.csv found beside the slide table
    return run, feats, tmp_path / "slides.csv", df, tmp_path / "omics.csv"


def test_fold_models_hold_their_training_folds_statistics(clinical_run) -> None:  # type: ignore[no-untyped-def]
    run, _, _, df, omics_csv = clinical_run
    meta = read_model_json(run)
    om = pd.read_csv(omics_csv, dtype={"patient_id": str}).set_index("patient_id")
    per_patient = df.drop_duplicates("patient_id").set_index("patient_id")
    means = []
    for fold in meta["folds"]:
        info = json.loads((run / fold["weights"]).with_name("fold.json").read_text())
        train = info["train_keys"]
        model = load_fold_weights(meta, run / fold["weights"])
        assert model.side_encoder is not None
        got = model.side_encoder.mean.numpy()
        assert got[0] == pytest.approx(per_patient.loc[train, "age"].mean(), rel=1e-5)
        omics_train = om.reindex(train).to_numpy()
        np.testing.assert_allclose(got[-om.shape[1] :], np.nanmean(omics_train, axis=0), rtol=1e-5)
        means.append(got[0])
    assert means[0] != means[1]  # each fold its own statistics, not the cohort's


def test_a_patient_without_omics_gets_the_documented_missing_rule(clinical_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run, feats, slides, df, omics_csv = clinical_run
    ens, meta = load_mil_model(run)
    spec_width = sum(1 if c["levels"] is None else len(c["levels"]) for c in meta["side"]["covariates"])
    full = predict_run(run, feats, tmp_path / "full.csv", slides)
    om = pd.read_csv(omics_csv, dtype={"patient_id": str})
    om[om["patient_id"] != "P003"].to_csv(tmp_path / "less.csv", index=False)
    less = predict_run(run, feats, tmp_path / "less.csv.out", slides, omics=tmp_path / "less.csv")
    assert (full["risk"] != less["risk"]).sum() == 1  # only P003's prediction changes
    # The rule: a patient without omics is predicted with every omics value missing, i.e. the
    # learned "omics absent" embedding; covariates as given.
    row = df[df["patient_id"] == "P003"]
    from wsi_ssl.mil.clinical.tables import SideSpec, side_rows

    side = side_rows(row, SideSpec.from_json(meta["side"]), None)[0]  # type: ignore[arg-type]
    assert np.isnan(side[spec_width:]).all() and not np.isnan(side[:1]).all()
    nan_row = om.copy()
    nan_row.loc[nan_row["patient_id"] == "P003", nan_row.columns[1:]] = np.nan
    nan_row.to_csv(tmp_path / "nan.csv", index=False)
    rule = predict_run(run, feats, tmp_path / "nan.csv.out", slides, omics=tmp_path / "nan.csv")
    np.testing.assert_allclose(less["risk"], rule["risk"], rtol=1e-6)  # absent row == every value missing
    x = read_features(Path(feats) / f"{row['slide_id'].iloc[0]}.h5").features
    # No clinical data at all (no slide table): every covariate and omics value takes its embedding.
    nothing = float(ens.predict_bag(x)["risk"])
    assert nothing == pytest.approx(float(ens.predict_bag(x, np.full_like(side, np.nan))["risk"]), rel=1e-6)


def test_bad_covariate_config_is_a_clear_error(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=8)
    df.to_csv(tmp_path / "slides.csv", index=False)
    cfg = MilConfig.model_validate(
        {"model": {"fusion": "film"}, "data": {"covariates": ["agee"]}, "eval": {"folds": 2}}
    )
    with pytest.raises(ConfigError, match=r"\['agee'\] not in the slide table"):
        train_run(cfg, feats, tmp_path / "slides.csv", tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written before the inputs are checked
    with pytest.raises(ValueError, match="needs data.covariates or data.omics"):
        MilConfig.model_validate({"model": {"fusion": "cross_attention"}})
    with pytest.raises(ValueError, match="unknown fusion kind 'early'"):
        MilConfig.model_validate({"model": {"fusion": "early"}})


def test_integer_codes_name_the_same_level_with_or_without_empty_cells() -> None:
    """pandas reads grade 1/2/3 with an empty cell as 1.0/2.0/3.0: the level is still "3", and a
    prediction table without empty cells (read as integers) matches it."""
    train = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "grade": [1, 3, None, 2]})
    assert train["grade"].dtype.kind == "f"
    spec = build_spec(train, ["grade"], ["grade"])
    assert spec.covariates[0].levels == ["1", "2", "3"]
    later = pd.DataFrame({"patient_id": ["e", "f"], "grade": [3, 1]})
    assert later["grade"].dtype.kind == "i"
    np.testing.assert_array_equal(side_rows(later, spec, None), [[0, 0, 1], [1, 0, 0]])
    as_text = pd.DataFrame({"patient_id": ["g"], "grade": ["2.0"]})
    np.testing.assert_array_equal(side_rows(as_text, spec, None), [[0, 1, 0]])
