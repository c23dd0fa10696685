"""Patient-grouped folds and the slide-table checks (each error names the problem)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wsi_ssl.mil.config import TaskConfig
from wsi_ssl.mil.splits import SplitError, assert_disjoint_patients, make_folds
from wsi_ssl.mil.table import SlideTableError, validate_slide_table


def test_folds_never_share_a_patient_and_cover_every_bag() -> None:
    rng = np.random.default_rng(0)
    patients = np.repeat([f"p{i}" for i in range(30)], rng.integers(1, 4, 30))  # slide-level bags
    labels = np.array([int(p[1:]) % 2 for p in patients])
    folds = make_folds("classification", labels, patients, n_folds=5, val_fraction=0.2, seed=3)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(patients)))
    for f in folds:
        sets = [set(patients[f.train]), set(patients[f.val]), set(patients[f.test])]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        assert len(f.val) > 0 and set(labels[f.test]) == {0, 1}


def test_survival_folds_stratify_on_event() -> None:
    y = np.stack([np.arange(40.0), np.r_[np.ones(10), np.zeros(30)]], axis=1)
    folds = make_folds("survival", y, np.arange(40).astype(str), n_folds=5, val_fraction=0.0)
    assert [int(y[f.test, 1].sum()) for f in folds] == [2, 2, 2, 2, 2]


def test_split_errors() -> None:
    with pytest.raises(SplitError, match="appears in two splits"):
        assert_disjoint_patients(np.array(["a", "b", "a"]), np.array([0, 1]), np.array([2]))
    with pytest.raises(SplitError, match="fewer patients than folds"):
        make_folds("classification", np.array([0] * 10 + [1] * 3), np.arange(13).astype(str), 5, 0.0)


def test_valid_table_passes_and_types_targets(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=12)
    out = validate_slide_table(df, TaskConfig(kind="survival"), feats, folds=3)
    assert out["event"].dtype.kind == "i" and out["time"].dtype.kind == "f"


@pytest.mark.parametrize(
    ("edit", "task", "message"),
    [
        (lambda d: d.assign(slide_id=d["slide_id"].where(d.index != 1, "NOPE")), "classification", "no feature file"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "classification", "duplicate slide_id"),
        (lambda d: d.drop(columns=["time"]), "survival", "needs 'time' and 'event'"),
        (lambda d: d.assign(event=2), "survival", "'event' must be 1"),
        (lambda d: d.assign(fold=np.arange(len(d)) % 3, patient_id="P000"), "regression", "split across 'fold'"),
        (lambda d: d.assign(label=["a"] * 10 + ["b"] * 2), "classification", "fewer patients than eval.folds"),
    ],
)
def test_bad_tables_are_refused_with_the_reason(tmp_path: Path, make_cohort, edit, task: str, message: str) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=12)
    cfg = TaskConfig(kind=task, label_column="score" if task == "regression" else "label")
    with pytest.raises(SlideTableError, match=message):
        validate_slide_table(edit(df), cfg, feats, folds=3)


def test_patient_slides_must_agree_on_target(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=12, slides_per_patient=2)
    df.loc[0, "label"] = "pos" if df.loc[0, "label"] == "neg" else "neg"
    with pytest.raises(SlideTableError, match="disagree"):
        validate_slide_table(df, TaskConfig(), feats, folds=3)
    validate_slide_table(df, TaskConfig(), feats, folds=3, group_by="slide")  # slide bags: allowed
