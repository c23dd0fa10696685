"""``wsi-ssl export-geojson --tiles TILES_DIR --out DIR [--mil RUN_DIR --features FEATS_DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-geojson",
        help="per-slide QuPath GeoJSON (tissue, ink, tile grid with measurements) and OME-TIFF score overlays",
        description=(
            "Write DIR/<slide_id>.geojson (QuPath 0.4+: File > Import objects) and DIR/<slide_id>.scores.ome.tif "
            "for every tile store in TILES_DIR. With --mil and --features, each tile detection also carries the "
            "model's attention and its own per-tile prediction. Coordinates are level-0 pixels."
        ),
    )
    p.add_argument(
        "--tiles", required=True, type=Path, help="folder of <slide_id>.zarr tile stores (wsi-ssl tile --out)"
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--mil", type=Path, help="a trained MIL run folder (wsi-ssl mil train --out)")
    p.add_argument("--features", type=Path, help="feature folder the MIL run reads (wsi-ssl embed --out)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsi_ssl.export.run import export_all
    from wsi_ssl.mil.loading import ModelDirError
    from wsi_ssl.stores.features import FeatureFileError
    from wsi_ssl.stores.tile_store import TileStoreError

    if (args.mil is None) != (args.features is None):
        print("wsi-ssl export-geojson: --mil and --features go together", file=sys.stderr)
        return 2
    try:
        summary = export_all(args.tiles, args.out, args.mil, args.features)
    except (TileStoreError, ModelDirError, FeatureFileError) as exc:
        print(f"wsi-ssl export-geojson: {exc}", file=sys.stderr)
        return 2
    for note in summary.notes:
        print(f"  note: {note}", file=sys.stderr)
    print(
        f"exported {summary.slides} slides ({summary.detections:,} tile detections, "
        f"{summary.annotations} tissue/ink annotations) -> {args.out}"
    )
    return 0 if summary.slides else 2
