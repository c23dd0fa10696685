"""Export a tiled cohort (and optionally a MIL run's scores) as QuPath GeoJSON plus OME-TIFF overlays.

Per slide, from its tile store: the kept tiles (coords, tissue fraction, tile extent from the
store's ``read_size`` x ``downsample``), and, when the source slide still opens, the tissue and ink
masks recomputed with the very tissue settings the store records (detection is deterministic, so
these are the masks the tiler used). A slide whose file is gone still gets its tile grid.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl.export.geojson import INK_COLOR, TISSUE_COLOR, feature_collection, mask_annotations, tile_detections
from wsi_ssl.export.mil_scores import MilScorer, scores_on_tiles
from wsi_ssl.export.overlay import write_score_overlay
from wsi_ssl.stores.atomic import atomic_output
from wsi_ssl.stores.tile_store import TileStore, find_tile_stores

log = logging.getLogger(__name__)


@dataclass
class ExportSummary:
    slides: int = 0
    detections: int = 0
    annotations: int = 0
    notes: list[str] = field(default_factory=list)


def _masks(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Tissue and ink annotations from the source slide, or a note saying why there are none."""
    from wsi_ssl.slide.readers import open_slide
    from wsi_ssl.slide.thumbnail import read_at_mpp
    from wsi_ssl.slide.tissue import TissueConfig, detect_tissue

    source = attrs.get("source_path")
    if not source or not Path(source).exists():
        return [], f"source slide {source} not found: tile grid only"
    settings = {k: v for k, v in dict(attrs.get("tissue_detection", {})).items() if k in TissueConfig.model_fields}
    settings.setdefault("fat", "exclude")  # stores tiled before the option kept stained tissue only
    cfg = TissueConfig.model_validate(settings)
    slide_mpp = float(attrs["slide_mpp"])
    try:
        with open_slide(source, attrs.get("backend", "auto"), mpp_override=slide_mpp, fast_reads=False) as slide:
            image, mpp = read_at_mpp(slide, max(cfg.mask_mpp, slide_mpp))
            width, height = slide.dimensions
    except Exception as exc:  # noqa: BLE001 - a slide that no longer opens costs the annotations only
        return [], f"source slide {source} does not open ({exc}): tile grid only"
    tissue = detect_tissue(image, mpp, cfg)
    scale = mpp / slide_mpp  # level-0 px per mask px
    feats = mask_annotations(tissue.mask, scale, width, height, "Tissue", TISSUE_COLOR)
    feats += mask_annotations(tissue.pen, scale, width, height, "Ink", INK_COLOR)
    return feats, None


def export_slide(
    store: TileStore, out_dir: Path, scorer: MilScorer | None = None, features_dir: Path | None = None
) -> dict[str, Any]:
    """Write ``<slide_id>.geojson`` and ``<slide_id>.scores.ome.tif``; return what was written."""
    attrs = store.attrs
    sid = store.slide_id
    coords = store.coords
    extent = float(attrs["read_size"]) * float(attrs["downsample"])
    measurements: dict[str, np.ndarray] = {"tissue_fraction": store.tissue.astype(np.float64)}
    info: dict[str, Any] = {"slide_id": sid, "tiles": len(coords)}
    if scorer is not None and features_dir is not None:
        scores, match = scores_on_tiles(scorer, features_dir, sid, coords)
        measurements.update(scores)
        info.update(match)
    annotations, note = _masks(attrs)
    features = annotations + tile_detections(coords, extent, measurements)
    geojson = out_dir / f"{sid}.geojson"
    with atomic_output(geojson) as tmp:
        tmp.write_text(json.dumps(feature_collection(features)))
    overlay = out_dir / f"{sid}.scores.ome.tif"
    stride0 = int(round(float(attrs["stride"]) * float(attrs["mpp"]) / float(attrs["slide_mpp"])))
    grid = write_score_overlay(overlay, coords, measurements, stride0, float(attrs["slide_mpp"]), sid)
    info.update(geojson=str(geojson), overlay=str(overlay), annotations=len(annotations), note=note or "", **grid)
    return info


def export_all(
    tiles_dir: Path, out_dir: Path, mil_run: Path | None = None, features_dir: Path | None = None
) -> ExportSummary:
    """Export every complete tile store in ``tiles_dir``; a ``manifest.json`` lists the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scorer = MilScorer(mil_run) if mil_run is not None else None
    summary = ExportSummary()
    written = []
    for path in find_tile_stores(tiles_dir):
        store = TileStore(path)
        info = export_slide(store, out_dir, scorer, features_dir)
        written.append(info)
        summary.slides += 1
        summary.detections += int(info["tiles"])
        summary.annotations += int(info["annotations"])
        if info["note"]:
            summary.notes.append(f"{info['slide_id']}: {info['note']}")
    with atomic_output(out_dir / "export.json") as tmp:
        tmp.write_text(json.dumps({"slides": written}, indent=1))
    return summary
