"""``wsi-ssl mil predict``: score new slides with a trained run's fold-model ensemble.

Bags are slides, or patients when the run grouped by patient and a slide table with
``patient_id`` is given. Predictions are averaged over the fold models in probability / value /
risk space; survival probabilities at the run's evaluation times are averaged per time point.
Every tile is used (no subsampling at prediction time).

A run trained with covariates/omics (``data.covariates``, ``data.omics``) reads them from the
slide table given and from the omics table (``--omics``, else the one the run was trained with,
if it is still there). Whatever is absent (no table, a missing column, a patient without omics)
takes the model's learned "missing" embedding: the rule the run was trained with, never an
imputation (``docs/mil.md``, "Clinical covariates and omics").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from wsi_ssl.mil.bags import load_bags
from wsi_ssl.mil.cv import prediction_frame
from wsi_ssl.mil.loading import load_mil_model
from wsi_ssl.mil.table import SlideTableError, read_slide_table
from wsi_ssl.mil.tasks import get_task
from wsi_ssl.mil.train import predict_bags
from wsi_ssl.stores.atomic import atomic_output
from wsi_ssl.stores.features import feature_path, iter_feature_files


def prediction_table(features_dir: str | Path, slides_csv: str | Path | None) -> pd.DataFrame:
    """The slides to predict: the table's (each with a feature file), or every feature file."""
    if slides_csv is not None:
        df = read_slide_table(slides_csv)
        if "slide_id" not in df.columns:
            raise SlideTableError(f"{slides_csv}: no 'slide_id' column")
        if "patient_id" not in df.columns:
            df["patient_id"] = df["slide_id"]
        missing = [s for s in df["slide_id"].astype(str) if not feature_path(features_dir, s).is_file()]
        if missing:
            raise SlideTableError(
                f"{slides_csv}: {len(missing)} slide(s) have no feature file in {features_dir}: {', '.join(missing[:5])}"
            )
    else:
        ids = [p.stem for p in iter_feature_files(features_dir)]
        if not ids:
            raise SlideTableError(f"no feature files (*.h5) in {features_dir}")
        df = pd.DataFrame({"slide_id": ids, "patient_id": ids})
    df["slide_id"], df["patient_id"] = df["slide_id"].astype(str), df["patient_id"].astype(str)
    return df.reset_index(drop=True)


def bag_chunks(df: pd.DataFrame, group_by: str, max_bags: int) -> Iterator[pd.DataFrame]:
    """The table in runs of at most ``max_bags`` bags, a bag's rows always together, bags in table order."""
    keys = df["patient_id"] if group_by == "patient" else df["slide_id"]
    groups = list(df.groupby(keys, sort=False).groups.values())
    for i in range(0, len(groups), max_bags):
        yield df.loc[np.concatenate(groups[i : i + max_bags])]


def predict_run(
    model_dir: str | Path,
    features_dir: str | Path,
    out_csv: str | Path,
    slides_csv: str | Path | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    max_bags_in_memory: int = 256,
    omics: str | Path | None = None,
) -> pd.DataFrame:
    """Write one row per bag to ``out_csv`` (replaced only when every bag is predicted) and return it.

    Bags are read ``max_bags_in_memory`` at a time, so a cohort of any size is predicted in
    bounded memory; each run of bags is scored by every fold model before the next is read.
    """
    ensemble, meta = load_mil_model(model_dir)
    task = get_task(meta["task"])
    df = prediction_table(features_dir, slides_csv)
    group_by = meta.get("group_by", "slide") if slides_csv is not None else "slide"
    times = np.asarray(meta["eval_times"]) if meta.get("eval_times") else None
    from wsi_ssl.mil.clinical.tables import SideSpec, attach_side, read_omics

    spec = SideSpec.from_json(meta.get("side"))
    omics_path = omics if omics is not None else (spec.omics_path if spec is not None else None)
    omics_table = read_omics(omics_path) if omics_path is not None and Path(omics_path).is_file() else None
    if omics is not None and omics_table is None:
        raise SlideTableError(f"--omics {omics}: file not found")
    frames = []
    for chunk in bag_chunks(df, group_by, max_bags_in_memory):
        bags = load_bags(chunk, features_dir, np.empty((len(chunk), 0)), group_by, encoder=meta.get("encoder"))
        if spec is not None:
            attach_side(bags, chunk, spec, omics_table, group_by)
        dim = bags[0].features.shape[1]
        if dim != meta["input_dim"]:
            raise SlideTableError(
                f"features in {features_dir} are {dim}-d but the model at {model_dir} expects {meta['input_dim']}-d (a different encoder?)"
            )
        preds = []
        for model, fold in zip(ensemble.fold_models, meta["folds"]):
            p = predict_bags(model, bags, batch_size, device)
            p.update(task.fold_outputs(p, meta, model.bin_edges.numpy(), fold, times))  # S(t) at the run's times
            for k in task.fold_only_outputs:
                p.pop(k, None)
            preds.append(p)
        mean = {k: np.mean([p[k] for p in preds], axis=0) for k in preds[0]}
        frames.append(prediction_frame(meta, bags, mean, times))
    out = pd.concat(frames, ignore_index=True)
    out_csv = Path(out_csv)
    with atomic_output(out_csv) as tmp:
        out.to_csv(tmp, index=False)
    return out
