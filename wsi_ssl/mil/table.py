"""Contract 4: the slide table, read and checked before any training starts.

One CSV row per slide: ``slide_id``, ``patient_id`` and the task's targets (a class column, a
numeric column, or ``time`` and ``event``: which, and how they are checked, belongs to the task
kind, :mod:`wsi_ssl.mil.tasks`). Optional ``path`` (the slide file, for heatmaps), ``split``
(``test`` marks a fixed held-out test set) and ``fold`` (predefined CV folds).
Every problem found is reported at once, so a user fixes the table in one pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wsi_ssl.mil.config import TaskConfig
from wsi_ssl.mil.tasks import get_task
from wsi_ssl.stores.features import feature_path


class SlideTableError(ValueError):
    """A slide table that cannot serve the configured task."""


def read_slide_table(path: str | Path) -> pd.DataFrame:
    """Read the CSV with ids as strings (so ``007`` stays ``007``)."""
    path = Path(path)
    if not path.is_file():
        raise SlideTableError(f"slide table not found: {path}")
    try:
        df = pd.read_csv(path, dtype={"slide_id": str, "patient_id": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SlideTableError(f"{path}: not a readable CSV ({exc})") from None
    df.attrs["source"] = str(path)
    return df


def _few(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def validate_slide_table(
    df: pd.DataFrame,
    task: TaskConfig,
    features_dir: str | Path | None = None,
    folds: int | None = None,
    group_by: str = "patient",
) -> pd.DataFrame:
    """Check the table against the task; return a clean copy with typed target columns.

    Raises SlideTableError listing every problem: missing columns, duplicate slides, missing
    feature files, survival without ``time``/``event``, patients whose slides disagree on the
    target, a patient split across predefined folds, or a class with fewer patients than folds.
    """
    src = df.attrs.get("source", "slide table")
    kind = get_task(task.kind)
    problems: list[str] = []
    need = ["slide_id", "patient_id", *kind.target_columns(task)]
    missing_cols = [c for c in need if c not in df.columns]
    if missing_cols:
        raise SlideTableError(
            f"{src}: missing column(s) {missing_cols}{kind.missing_columns_hint}; found {list(df.columns)}"
        )
    df = df.copy()
    df["slide_id"] = df["slide_id"].astype(str)
    df["patient_id"] = df["patient_id"].astype(str)
    if df["slide_id"].isin(["", "nan"]).any() or df["patient_id"].isin(["", "nan"]).any():
        problems.append("empty slide_id or patient_id in some rows")
    dup = df["slide_id"][df["slide_id"].duplicated()].unique().tolist()
    if dup:
        problems.append(f"duplicate slide_id(s): {_few(dup)}")
    if features_dir is not None:
        absent = [s for s in df["slide_id"] if not feature_path(features_dir, s).is_file()]
        if absent:
            problems.append(f"{len(absent)} slide(s) have no feature file in {features_dir}: {_few(absent)}")
    problems += kind.check_targets(df, task)
    if "split" in df.columns:
        bad = sorted(set(df["split"].dropna().astype(str)) - {"train", "test"})
        if bad:
            problems.append(f"column 'split' may only hold 'train' or 'test', found {bad}")
    if not problems:
        problems += _check_patients(df, task, group_by)
    if not problems and folds is not None:
        problems += _check_fold_sizes(df, task, folds)
    if problems:
        raise SlideTableError(f"{src}:\n  " + "\n  ".join(problems))
    return df


def _check_patients(df: pd.DataFrame, task: TaskConfig, group_by: str) -> list[str]:
    problems: list[str] = []
    per_patient = df.groupby("patient_id")
    if group_by == "patient":
        cols = get_task(task.kind).target_columns(task)
        n_distinct = per_patient[cols].nunique(dropna=False).max(axis=1)
        bad = n_distinct[n_distinct > 1].index.tolist()
        if bad:
            problems.append(
                f"patient(s) whose slides disagree on {cols}: {_few(bad)} (one bag per patient needs one target)"
            )
    for col in ("fold", "split"):
        if col in df.columns:
            n = per_patient[col].nunique(dropna=False)
            bad = n[n > 1].index.tolist()
            if bad:
                problems.append(f"patient(s) split across {col!r} values: {_few(bad)} (splits must be by patient)")
    return problems


def _check_fold_sizes(df: pd.DataFrame, task: TaskConfig, folds: int) -> list[str]:
    """Stratified K-fold needs at least K patients of each class (of each event status)."""
    train = df[df["split"].astype(str) != "test"] if "split" in df.columns else df
    if "fold" in train.columns:
        return []
    patients = train.drop_duplicates("patient_id")
    if len(patients) < folds:
        return [f"{len(patients)} patient(s) for {folds} folds: need at least one patient per fold"]
    counts = get_task(task.kind).stratum_counts(patients, task)  # per class / event status
    if counts is None:
        return []
    small = {str(k): int(v) for k, v in counts.items() if v < folds}
    if small:
        return [f"class(es) with fewer patients than eval.folds={folds}: {small}"]
    return []


def target_array(df: pd.DataFrame, task: TaskConfig, classes: list[str] | None) -> np.ndarray:
    """Targets as numbers: class index, float value, or [time, event] rows."""
    return get_task(task.kind).target_array(df, task, classes)
