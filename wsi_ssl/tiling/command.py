"""``wsi-ssl tile SLIDES... --out DIR``: the command-line face of the tiler."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsi_ssl.resources import packaged_path
from wsi_ssl.shard import SHARD_HELP

DEFAULT_CONFIG = packaged_path("configs", "tile", "default.yaml")  # shipped in the package


def register(sub: argparse._SubParsersAction) -> None:
    from wsi_ssl.slide.readers import backend_names

    p = sub.add_parser(
        "tile",
        help="find tissue and cut slides into tiles at a chosen MPP (zarr tile stores)",
        description="Tile whole-slide images into zarr v3 tile stores (one per slide), with a manifest and QC images.",
    )
    p.add_argument(
        "slides", nargs="*", help="slide files, folders (searched recursively) or a CSV with slide_id,path[,mpp]"
    )
    p.add_argument("--out", help="output folder (or s3://, gs:// URL) for <slide_id>.zarr, manifest.csv and qc/")
    p.add_argument("--config", type=Path, help="YAML config (default: configs/tile/default.yaml when present)")
    p.add_argument("--mpp", type=float, help="target microns per pixel (default 0.5)")
    p.add_argument("--tile-size", type=int, help="tile edge in pixels (default 224)")
    p.add_argument("--overlap", type=int, help="pixels shared by neighbouring tiles (default 0)")
    p.add_argument("--min-tissue", type=float, help="minimum tissue fraction of a kept tile (default 0.25)")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    p.add_argument("--backend", choices=backend_names(), help="slide reader (default auto)")
    p.add_argument("--mpp-override", type=float, help="MPP to use for slides whose files carry none")
    p.add_argument("--codec", choices=["jpeg", "png", "raw"], help="tile codec (png and raw are lossless)")
    p.add_argument("--quality", type=int, help="JPEG quality (default 90)")
    p.add_argument("--no-qc", action="store_true", help="skip the QC images")
    p.add_argument("--shard", help=SHARD_HELP)
    p.add_argument(
        "--merge-manifests",
        type=Path,
        metavar="OUT",
        help="merge OUT/manifest.shard-I-of-N.csv of a job array into OUT/manifest.csv, then exit (no tiling)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override any config key, e.g. tissue.mask_mpp=4"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the slides found (id, path, reader, MPP, size) and what would fail; tile nothing",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsi_ssl.config import load_config, parse_overrides
    from wsi_ssl.shard import parse_shard
    from wsi_ssl.slide.discover import SlideListError, discover_slides
    from wsi_ssl.tiling.config import TileConfig
    from wsi_ssl.tiling.runner import OutputError, run_tiling

    if args.merge_manifests is not None:
        from wsi_ssl.tiling.merge import run_merge

        return run_merge(args.merge_manifests)
    if not args.slides or (args.out is None and not args.dry_run):
        print("wsi-ssl tile: give SLIDES... and --out DIR (or --merge-manifests OUT)", file=sys.stderr)
        return 2
    config_path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    flags = {
        "mpp": args.mpp,
        "tile_size": args.tile_size,
        "overlap": args.overlap,
        "min_tissue": args.min_tissue,
        "workers": args.workers,
        "backend": args.backend,
        "mpp_override": args.mpp_override,
        "codec": args.codec,
        "quality": args.quality,
        "qc": False if args.no_qc else None,
    }
    cfg = load_config(TileConfig, config_path, parse_overrides(args.set), flags)
    try:
        shard = parse_shard(args.shard)
        entries = discover_slides(args.slides)
    except (SlideListError, ValueError) as exc:
        print(f"wsi-ssl tile: {exc}", file=sys.stderr)
        return 2
    if not entries:
        print(f"wsi-ssl tile: no slide files found in {' '.join(args.slides)}", file=sys.stderr)
        return 2
    if args.dry_run:
        from wsi_ssl.tiling.dry_run import dry_run

        return dry_run(entries, cfg)
    try:
        summary = run_tiling(entries, args.out, cfg, shard, progress=not args.no_progress)
    except OutputError as exc:
        print(f"wsi-ssl tile: {exc}", file=sys.stderr)
        return 1
    for sid, err in summary.failures:
        print(f"  failed: {sid}: {err}", file=sys.stderr)
    print(summary.line(args.out))
    return 1 if summary.failed else 0
