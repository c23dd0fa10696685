"""``wsi-ssl mil train`` end to end: table + feature files -> run dir with models, predictions,
metrics, plots and heatmaps.

Order matters for failing early: the config is validated by the caller, then the slide table
(every problem at once), then every feature file is read, and only then does training start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wsi_ssl.config import dump_config
from wsi_ssl.mil.aggregators.registry import get_aggregator_entry
from wsi_ssl.mil.bags import Bag, load_bags
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import CVResult, run_cv
from wsi_ssl.mil.model import model_meta
from wsi_ssl.mil.table import read_slide_table, target_array, validate_slide_table
from wsi_ssl.mil.tasks import get_task
from wsi_ssl.shard import Shard
from wsi_ssl.stores.features import encoder_identity, feature_path, read_feature_attrs

log = logging.getLogger(__name__)


def slide_file(df: pd.DataFrame, slide_id: str, slides_dir: str | Path | None) -> Path | None:
    """The slide file for heatmap thumbnails: the table's ``path`` column, else ``slides_dir/<id>.*``."""
    if "path" in df.columns:
        rows = df.loc[df["slide_id"] == slide_id, "path"].dropna()
        if len(rows) and Path(str(rows.iloc[0])).exists():
            return Path(str(rows.iloc[0]))
    if slides_dir is not None:
        hits = sorted(p for p in Path(slides_dir).glob(f"{slide_id}.*") if p.is_file())
        if hits:
            return hits[0]
    return None


def write_heatmaps(
    bags: Sequence[Bag],
    scores: dict[str, np.ndarray],
    features_dir: str | Path,
    out_dir: Path,
    df: pd.DataFrame,
    slides_dir: str | Path | None,
    limit: int,
    top_k: int,
    order: Sequence[str] | None = None,
) -> int:
    """Heatmaps for up to ``limit`` bags (``order`` first: e.g. the most confident), one per slide."""
    from wsi_ssl.mil.heatmaps import level0_tile_px, slide_heatmap
    from wsi_ssl.slide.readers import open_slide

    by_key = {b.key: b for b in bags}
    keys = [k for k in (order or by_key) if k in scores and k in by_key][:limit]
    n = 0
    for key in keys:
        bag, s = by_key[key], scores[key]
        if bag.coords is None or bag.slide_index is None:
            continue
        for j, sid in enumerate(bag.slide_ids):
            sel = bag.slide_index == j
            attrs = read_feature_attrs(feature_path(features_dir, sid))
            path = slide_file(df, sid, slides_dir)
            slide_mpp = None
            if path is not None:
                try:
                    with open_slide(path, fast_reads=False) as slide:
                        slide_mpp = slide.mpp
                except Exception as exc:  # noqa: BLE001 - an unreadable slide only costs the overlay
                    log.warning("slide %s: cannot open %s (%s); drawing the grid heatmap only", sid, path, exc)
                    path = None
            try:
                slide_heatmap(
                    bag.coords[sel],
                    s[sel],
                    out_dir / f"{sid}.png",
                    level0_tile_px(attrs, slide_mpp),
                    path,
                    title=f"{sid} ({key})",
                    top_k=top_k,
                )
                n += 1
            except Exception as exc:  # noqa: BLE001 - a heatmap failure must not lose a finished run
                log.warning("slide %s: heatmap failed: %s", sid, exc)
    return n


def _split_test(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if "split" not in df.columns:
        return df, df.iloc[:0]
    is_test = df["split"].astype(str) == "test"
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def train_run(
    cfg: MilConfig,
    features_dir: str | Path,
    slides_csv: str | Path,
    out_dir: str | Path,
    slides_dir: str | Path | None = None,
    shard: Shard | None = None,
    merge: bool = False,
) -> CVResult:
    """Validate, load, cross-validate, and write everything into ``out_dir``.

    A ``shard`` of several trains only its folds and returns (``result.trained_folds``); a later
    ``merge`` run gathers them (see ``cv``)."""
    out_dir = Path(out_dir)
    task = cfg.task
    df = validate_slide_table(read_slide_table(slides_csv), task, features_dir, cfg.eval.folds, cfg.data.group_by)
    if "path" in df.columns:  # relative slide paths are relative to the table's folder
        base = Path(slides_csv).parent
        df["path"] = [p if pd.isna(p) or Path(str(p)).is_absolute() else str(base / str(p)) for p in df["path"]]
    kind = get_task(task.kind)
    classes = kind.classes(df, task)  # None unless classification
    train_df, test_df = _split_test(df)
    from wsi_ssl.mil.clinical.tables import attach_side, load_side_inputs

    # covariate columns and the omics table are checked before any feature file is read
    d = cfg.data
    side_spec, omics = load_side_inputs(
        df, d.covariates, d.categorical, d.omics, d.omics_components, Path(slides_csv).parent
    )
    bags = load_bags(train_df, features_dir, target_array(train_df, task, classes), cfg.data.group_by)
    test_bags = (
        load_bags(test_df, features_dir, target_array(test_df, task, classes), cfg.data.group_by)
        if len(test_df)
        else []
    )
    if side_spec is not None:
        attach_side(bags, train_df, side_spec, omics, d.group_by)
        if test_bags:
            attach_side(test_bags, test_df, side_spec, omics, d.group_by)
    predefined = None
    if "fold" in train_df.columns:
        key_col = "patient_id" if cfg.data.group_by == "patient" else "slide_id"
        fold_of = dict(zip(train_df[key_col].astype(str), train_df["fold"]))
        predefined = np.array([fold_of[b.key] for b in bags])
    dim = bags[0].features.shape[1]
    log.info(
        "%d bags (%d test), %d-d features, task %s, aggregator %s",
        len(bags),
        len(test_bags),
        dim,
        task.kind,
        cfg.aggregator.kind,
    )
    meta = model_meta(dim, cfg.aggregator, task.kind, classes, task.survival_loss, task.n_bins)
    meta["group_by"] = cfg.data.group_by
    if side_spec is not None:  # the raw covariate/omics layout, so `mil predict` builds the same rows
        meta["fusion"] = cfg.model.fusion.model_dump(mode="json")
        meta["side"] = side_spec.to_json()
    # Which encoder made the features, so `mil predict` refuses features of another one.
    meta["encoder"] = encoder_identity(read_feature_attrs(feature_path(features_dir, bags[0].slide_ids[0])))
    out_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out_dir / "config.yaml")
    result = run_cv(cfg, meta, bags, out_dir, test_bags, predefined, shard=shard, train_missing=not merge)
    if result.trained_folds is not None:  # one job of an array: the --merge run writes the rest
        return result
    if side_spec is not None and cfg.eval.compare:  # does the slide add to the clinical data?
        from wsi_ssl.mil.clinical.compare import add_comparison
        from wsi_ssl.mil.cv import write_json

        add_comparison(cfg, meta, bags, result, out_dir, side_spec, predefined)
        write_json(result.metrics, out_dir / "metrics.json")
    if cfg.eval.pooled_linear.enabled:  # the simple baseline every run is measured against
        from wsi_ssl.mil.baselines import add_pooled_linear
        from wsi_ssl.mil.cv import write_json

        add_pooled_linear(cfg, meta, bags, result)
        write_json(result.metrics, out_dir / "metrics.json")
    extras: dict[str, Any] = {}
    if cfg.eval.plots:
        extras["plots"] = kind.plots(result.oof, classes, out_dir / "plots", "oof")
        if result.test is not None:
            extras["test_plots"] = kind.plots(result.test, classes, out_dir / "plots", "test")
    if cfg.eval.heatmaps and result.oof_scores and get_aggregator_entry(cfg.aggregator.kind).attention:
        order = _confident_first(result.oof, task.kind, classes)
        extras["heatmaps"] = write_heatmaps(
            bags,
            result.oof_scores,
            features_dir,
            out_dir / "heatmaps",
            df,
            slides_dir,
            cfg.eval.heatmaps,
            cfg.eval.top_tiles,
            order,
        )
    if extras:
        import json

        (out_dir / "outputs.json").write_text(json.dumps(extras, indent=2, default=float))
    return result


def _confident_first(oof: pd.DataFrame, task: str, classes: list[str] | None) -> list[str]:
    """Bags ordered by the strongest prediction: highest positive probability / value / risk."""
    col = get_task(task).confidence_column(classes)
    return oof.sort_values(col, ascending=False)["key"].astype(str).tolist()


def summary_line(result: CVResult) -> str:
    parts = [f"{k} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for k, v in result.metrics["oof"].items()]
    line = f"out-of-fold ({result.metrics['n_bags']} bags, {result.metrics['folds']} folds): " + ", ".join(parts)
    from wsi_ssl.mil.baselines.pooled import baseline_line

    baseline = baseline_line(result.metrics)
    return line if baseline is None else f"{line}\n{baseline}"
