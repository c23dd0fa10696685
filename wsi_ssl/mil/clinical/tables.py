"""Covariate columns and omics tables -> one raw "side" vector per bag, NaN where missing.

The raw vector is the same for every fold (no statistic in it): numeric covariates as they are,
each categorical covariate one-hot over the levels the whole table names (the level names only;
which levels a fold has seen is fitted per fold, :mod:`.encoder`), then the omics features. A
missing value stays NaN (a missing categorical is NaN in all its columns; a patient absent from
the omics table is NaN in every omics column), so the model sees the mask, never an imputation.
The layout (:class:`SideSpec`) is stored in ``model.json``, so ``mil predict`` builds the same
vector for new slides: an unknown level or absent column counts as missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wsi_ssl.config import ConfigError


@dataclass
class Covariate:
    name: str
    levels: list[str] | None = None  # categorical: one-hot columns in this order; None: numeric

    @property
    def width(self) -> int:
        return len(self.levels) if self.levels is not None else 1


@dataclass
class SideSpec:
    """Layout of the raw side vector: covariates (in config order), then omics features."""

    covariates: list[Covariate] = field(default_factory=list)
    omics_features: list[str] = field(default_factory=list)
    omics_path: str | None = None
    omics_components: int = 0

    @property
    def cov_width(self) -> int:
        return sum(c.width for c in self.covariates)

    @property
    def width(self) -> int:
        return self.cov_width + len(self.omics_features)

    def groups(self) -> np.ndarray:
        """Covariate index of each covariate column (one group per covariate)."""
        return (
            np.concatenate([np.full(c.width, i) for i, c in enumerate(self.covariates)]).astype(np.int64)
            if self.covariates
            else np.zeros(0, np.int64)
        )

    def column_names(self) -> list[str]:
        names: list[str] = []
        for c in self.covariates:
            names += [c.name] if c.levels is None else [f"{c.name}={lvl}" for lvl in c.levels]
        return names + [f"omics:{f}" for f in self.omics_features]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> SideSpec | None:
        if not d:
            return None
        covs = [Covariate(**c) for c in d.get("covariates", [])]
        return cls(covs, list(d.get("omics_features", [])), d.get("omics_path"), int(d.get("omics_components", 0)))


def _is_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and pd.to_numeric(present, errors="coerce").notna().all()


def read_omics(path: str | Path) -> pd.DataFrame:
    """A per-patient omics table indexed by ``patient_id`` (str), one float column per feature.

    CSV or parquet: a ``patient_id`` column plus feature columns. h5: datasets ``patient_id``
    (strings) and ``values`` [n, p], optional ``features`` (names).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data.omics: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            if "patient_id" not in f or "values" not in f:
                raise ConfigError(f"{path}: an omics h5 needs datasets 'patient_id' and 'values'")
            ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["patient_id"][()]]
            values = np.asarray(f["values"][()], dtype=np.float64)
            names = (
                [x.decode() if isinstance(x, bytes) else str(x) for x in f["features"][()]]
                if "features" in f
                else [f"f{j}" for j in range(values.shape[1])]
            )
        df = pd.DataFrame(values, columns=names)
        df.insert(0, "patient_id", ids)
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype={"patient_id": str})
    else:
        raise ConfigError(f"data.omics: {path}: unsupported format {suffix!r} (use .csv, .parquet or .h5)")
    if "patient_id" not in df.columns:
        raise ConfigError(f"{path}: the omics table needs a 'patient_id' column; found {list(df.columns)[:8]}")
    df["patient_id"] = df["patient_id"].astype(str)
    if df["patient_id"].duplicated().any():
        dup = df["patient_id"][df["patient_id"].duplicated()].unique()[:5].tolist()
        raise ConfigError(f"{path}: patient(s) listed twice in the omics table: {dup}")
    feats = df.drop(columns=["patient_id"])
    bad = [c for c in feats.columns if not _is_numeric(feats[c]) and feats[c].notna().any()]
    if bad:
        raise ConfigError(f"{path}: omics column(s) that are not numbers: {bad[:5]}")
    feats = feats.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    feats.index = df["patient_id"].to_numpy()
    feats.columns = [str(c) for c in feats.columns]
    return feats


def build_spec(
    df: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    omics: pd.DataFrame | None = None,
    omics_path: str | None = None,
    omics_components: int = 0,
) -> SideSpec:
    """The layout for ``covariates`` of the slide table ``df``; a ConfigError names absent columns."""
    absent = [c for c in [*covariates, *categorical] if c not in df.columns]
    if absent:
        raise ConfigError(f"data.covariates / data.categorical: column(s) {absent} not in the slide table")
    stray = [c for c in categorical if c not in covariates]
    if stray:
        raise ConfigError(f"data.categorical lists {stray}, which are not in data.covariates")
    covs = []
    for name in covariates:
        col = df[name]
        if name in categorical or not _is_numeric(col):
            levels = sorted({level_name(v) for v in col.dropna()})
            covs.append(Covariate(name, levels))
        else:
            covs.append(Covariate(name, None))
    feats = list(omics.columns) if omics is not None else []
    if omics_components and omics is not None and omics_components > len(feats):
        raise ConfigError(f"data.omics_components={omics_components} exceeds the {len(feats)} omics features")
    return SideSpec(covs, feats, omics_path, omics_components if omics is not None else 0)


_INTEGRAL_TEXT = re.compile(r"[+-]?\d+\.0+")


def level_name(value: object) -> str:
    """A categorical value's level name. pandas reads a column of integer codes with an empty
    cell as floats, so grade 3 is ``3.0`` in one table and ``3`` in another (with no empty cell):
    integral floats, and their text, name the level ``3`` in both."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text.split(".")[0] if _INTEGRAL_TEXT.fullmatch(text) else text


def side_rows(df: pd.DataFrame, spec: SideSpec, omics: pd.DataFrame | None) -> np.ndarray:
    """The raw side vector of each row of ``df`` [n, spec.width], float32, NaN where missing."""
    n = len(df)
    parts: list[np.ndarray] = []
    for c in spec.covariates:
        col = df[c.name] if c.name in df.columns else pd.Series([np.nan] * n, index=df.index)
        if c.levels is None:
            parts.append(pd.to_numeric(col, errors="coerce").to_numpy(np.float64)[:, None])
        else:
            text = col.astype(object).where(col.notna(), None)
            known = [level_name(lvl) for lvl in c.levels]
            onehot = np.full((n, len(c.levels)), np.nan)
            for i, v in enumerate(text):
                if v is not None and level_name(v) in known:
                    onehot[i] = 0.0
                    onehot[i, known.index(level_name(v))] = 1.0
            parts.append(onehot)
    if spec.omics_features:
        block = np.full((n, len(spec.omics_features)), np.nan)
        if omics is not None:
            known = omics.reindex(columns=spec.omics_features)
            ids = df["patient_id"].astype(str).to_numpy()
            hit = np.isin(ids, known.index)
            block[hit] = known.loc[ids[hit]].to_numpy(np.float64)
        parts.append(block)
    return (np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))).astype(np.float32)


def attach_side(
    bags: Sequence[Any], df: pd.DataFrame, spec: SideSpec, omics: pd.DataFrame | None, group_by: str
) -> None:
    """Give each bag the raw side vector of its first table row (a patient's slides share covariates;
    with ``group_by: slide`` each slide has its own row)."""
    rows = side_rows(df.reset_index(drop=True), spec, omics)
    key_col = "patient_id" if group_by == "patient" else "slide_id"
    first = {str(k): i for i, k in reversed(list(enumerate(df[key_col].astype(str))))}
    for bag in bags:
        bag.side = rows[first[bag.key]]


def resolve_omics(omics_path: str | None, table_dir: str | Path | None) -> str | None:
    """``data.omics`` as given, else relative to the slide table's folder (like its ``path`` column),
    else its file name in that folder (``demo/omics.csv`` beside ``demo/slides.csv``)."""
    if omics_path is None or table_dir is None:
        return omics_path
    given = Path(omics_path).expanduser()
    if given.is_absolute() or given.exists():
        return str(given)
    for beside in (Path(table_dir) / given, Path(table_dir) / given.name):
        if beside.exists():
            return str(beside)
    return str(given)


def load_side_inputs(
    df: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str],
    omics_path: str | None,
    omics_components: int = 0,
    table_dir: str | Path | None = None,
) -> tuple[SideSpec | None, pd.DataFrame | None]:
    """The spec and omics table a config asks for (None, None without covariates or omics)."""
    if not covariates and omics_path is None:
        return None, None
    omics_path = resolve_omics(omics_path, table_dir)
    omics = read_omics(omics_path) if omics_path is not None else None
    path = str(Path(omics_path).resolve()) if omics_path is not None else None
    return build_spec(df, covariates, categorical, omics, path, omics_components), omics
