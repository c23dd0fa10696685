"""``wsi-ssl demo-cohort``: write the generated demo cohort (slides, truth, slides.csv)."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo-cohort",
        help="generate a synthetic H&E cohort with planted biomarker/survival/TIL signal",
        description="Write DIR/slides/<slide_id>.tiff (pyramidal JPEG TIFF) with per-slide "
        "ground truth (<slide_id>.truth.npz) and DIR/slides.csv (slide_id, patient_id, path, "
        "biomarker, tumor_fraction, til_score, time, event). Deterministic by --seed.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--slides", type=int, default=24, help="number of slides (default 24)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--width", type=int, default=4096, help="level-0 width in pixels (default 4096)")
    p.add_argument("--height", type=int, default=3072, help="level-0 height in pixels (default 3072)")
    p.add_argument("--mpp", type=float, default=0.5, help="microns per pixel at level 0 (default 0.5)")
    p.add_argument("--levels", type=int, default=3, help="pyramid levels, 2x apart (default 3)")
    p.add_argument("--slides-per-patient", type=int, default=1, help="slides per patient (default 1)")
    p.add_argument("--compression", choices=("jpeg", "zlib", "none"), default="jpeg", help="tile codec (default jpeg)")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument(
        "--overwrite", action="store_true", help="regenerate slides even if already written with the same arguments"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsi_ssl.synthetic import make_cohort

    for name in ("slides", "width", "height", "levels", "slides_per_patient", "workers"):
        if getattr(args, name) < 1:
            raise SystemExit(f"wsi-ssl demo-cohort: --{name.replace('_', '-')} must be >= 1")
    if args.mpp <= 0:
        raise SystemExit("wsi-ssl demo-cohort: --mpp must be positive")
    start = time.perf_counter()
    csv_path = make_cohort(
        args.out,
        args.slides,
        seed=args.seed,
        width=args.width,
        height=args.height,
        mpp=args.mpp,
        levels=args.levels,
        slides_per_patient=args.slides_per_patient,
        jpeg_quality=args.jpeg_quality,
        compression=args.compression,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    positives = sum(int(r["biomarker"]) for r in rows)
    events = sum(int(r["event"]) for r in rows)
    patients = len({r["patient_id"] for r in rows})
    print(
        f"demo-cohort: {len(rows)} slides ({patients} patients, {positives} biomarker-positive, "
        f"{events} events) at {args.mpp:g} um/px, {args.width}x{args.height}, "
        f"{time.perf_counter() - start:.1f}s -> {csv_path}"
    )
    return 0
