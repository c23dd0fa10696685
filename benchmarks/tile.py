"""Throughput of `wsi-ssl tile` against a plain read_region loop, measured side by side.

    python benchmarks/tile.py [--slide PATH] [--workers 2] [--copies K]

Generates (once, cached; ~70 s, 7 GB peak) a 32768 x 24576 px H&E-like slide with ~3,700 tissue tiles
at 0.5 um/px (a real 20x slide has 10,000-50,000; --slide takes any other),
then times, in the same run:
  ours:     the whole tiler (tissue detection, block reads, JPEG encoding, zarr shard writes,
            worker start-up included), with --workers processes;
  baseline: one process calling openslide's read_region once per tile over the same
            coordinates and keeping nothing (what most pipelines' loaders do per patch).
--copies K tiles K links to the slide as a K-slide cohort (planning then overlaps other slides'
shard work, as in a real run); the baseline reads every copy's tiles too.
Prints bytes per tile of the store against the source and, last, the ratio ours/baseline.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import openslide

from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.stores.tile_store import TileStore
from wsi_ssl.tiling.config import TileConfig
from wsi_ssl.tiling.runner import run_tiling

CACHE = Path(tempfile.gettempdir()) / "wsi_ssl_bench"


def bench_slide() -> Path:
    from wsi_ssl.synthetic import write_slide

    path = CACHE / "bench_32k.tiff"
    if not path.exists():
        print(f"generating {path} (once) ...", flush=True)
        write_slide(path, width=32768, height=24576, mpp=0.5, levels=6, seed=11)
    return path


def _link(target: Path, link: Path) -> Path:
    link.symlink_to(target.resolve())
    return link


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", type=Path, help="a slide to use instead of the generated one")
    ap.add_argument("--workers", type=int, default=0, help="tiler processes (0 = all cores)")
    ap.add_argument("--codec", default="jpeg")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--qc", action="store_true", help="also write the QC PNGs (off by default: not tiling work)")
    ap.add_argument("--copies", type=int, default=1, help="tile a cohort of this many links to the slide")
    args = ap.parse_args()
    slide = args.slide or bench_slide()
    cfg = TileConfig(workers=args.workers, codec=args.codec, qc=args.qc)
    ours, base = [], []
    links = Path(tempfile.mkdtemp(prefix="tilebench-links-"))
    entries = [SlideEntry(slide.stem, slide)] + [
        SlideEntry(f"{slide.stem}-{k}", _link(slide, links / f"{slide.stem}-{k}{slide.suffix}"))
        for k in range(1, args.copies)
    ]
    for rep in range(args.repeats):
        out = Path(tempfile.mkdtemp(prefix="tilebench-"))
        t0 = time.perf_counter()
        summary = run_tiling(entries, out, cfg, progress=False)
        t_ours = time.perf_counter() - t0
        assert summary.done == len(entries), summary.failures
        store = TileStore(out / f"{slide.stem}.zarr")
        n = len(store) * len(entries)
        coords, level, size = store.coords, int(store.attrs["level"]), int(store.attrs["read_size"])
        t0 = time.perf_counter()
        for entry in entries:
            osr = openslide.OpenSlide(str(entry.path))
            for x, y in coords:
                osr.read_region((int(x), int(y)), level, (size, size))
            osr.close()
        t_base = time.perf_counter() - t0
        ours.append(n / t_ours)
        base.append(n / t_base)
        if rep == 0:
            sbytes = store_bytes(out / f"{slide.stem}.zarr") / len(store)
            w, h = openslide.OpenSlide(str(slide)).dimensions
            tile_area0 = (size * float(store.attrs["downsample"])) ** 2
            src = slide.stat().st_size / (w * h / tile_area0)
            print(
                f"slide {slide.name} x{len(entries)}: {w}x{h} px, {len(store)} tissue tiles of {cfg.tile_size} px at {cfg.mpp} um/px "
                f"(level {level}, read {size} px)"
            )
            print(
                f"bytes per tile: store {sbytes / 1024:.1f} KiB ({cfg.codec}), source {src / 1024:.1f} KiB "
                f"(file size per tile area, all levels) -> {sbytes / src:.2f}x"
            )
        print(
            f"run {rep + 1}: ours {n / t_ours:,.0f} tiles/s ({t_ours:.2f} s), "
            f"read_region loop {n / t_base:,.0f} tiles/s ({t_base:.2f} s)",
            flush=True,
        )
        shutil.rmtree(out, ignore_errors=True)
    best_ours, best_base = max(ours), max(base)
    shutil.rmtree(links, ignore_errors=True)
    print(f"ratio ours / read_region loop: {best_ours / best_base:.2f}x (best of {args.repeats})")


if __name__ == "__main__":
    main()
