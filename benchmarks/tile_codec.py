"""Which codec for stored tiles: bytes per tile against the source slide's, decode speed, error.

    python benchmarks/tile_codec.py [--slide ../shared/data/wsi/CMU-1-Small-Region.svs]

Reads every 224-px tissue tile of a real slide at its native resolution, encodes each with every
candidate codec, and prints per codec: mean bytes per tile, ratio against the source file's bytes
per tile area, decode tiles/s (one core) and mean/max absolute error against the source pixels.
The README's "Tile codec" section quotes this table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import imagecodecs
import numpy as np
from numcodecs import Zstd

from wsi_ssl.slide.readers import open_slide
from wsi_ssl.slide.thumbnail import read_at_mpp
from wsi_ssl.slide.tissue import detect_tissue, tile_tissue_fractions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "wsi" / "CMU-1-Small-Region.svs"

CODECS = {
    "jpeg q80 4:2:0": (lambda t: imagecodecs.jpeg8_encode(t, level=80), imagecodecs.jpeg8_decode),
    "jpeg q90 4:4:4 (default)": (
        lambda t: imagecodecs.jpeg8_encode(t, level=90, subsampling="444"),
        imagecodecs.jpeg8_decode,
    ),
    "jpeg q95 4:4:4": (lambda t: imagecodecs.jpeg8_encode(t, level=95, subsampling="444"), imagecodecs.jpeg8_decode),
    "png zlib-1 (lossless)": (lambda t: imagecodecs.png_encode(t, level=1), imagecodecs.png_decode),
    "raw + zstd-3 (lossless)": (
        lambda t: Zstd(level=3).encode(t.tobytes()),
        lambda b: np.frombuffer(Zstd().decode(b), np.uint8).reshape(224, 224, 3),
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", type=Path, default=DEFAULT)
    args = ap.parse_args()
    slide = open_slide(args.slide)
    w, h = slide.dimensions
    thumb, mpp = read_at_mpp(slide, 8.0)
    mask = detect_tissue(thumb, mpp)
    coords = np.array([(x, y) for y in range(0, h - 223, 224) for x in range(0, w - 223, 224)])
    coords = coords[tile_tissue_fractions(mask, coords, 224, slide.require_mpp()) >= 0.25]
    tiles = [slide.read_region(int(x), int(y), 0, 224, 224) for x, y in coords]
    src = args.slide.stat().st_size / (w * h / 224**2)
    print(f"{args.slide.name}: {len(tiles)} tissue tiles; source {src / 1024:.1f} KiB per 224-px tile area")
    print(f"{'codec':<26} {'KiB/tile':>9} {'vs source':>9} {'decode/s':>9} {'mean err':>9} {'max err':>8}")
    for name, (enc, dec) in CODECS.items():
        blobs = [enc(t) for t in tiles]
        t0 = time.perf_counter()
        for _ in range(3):
            out = [dec(b) for b in blobs]
        rate = 3 * len(blobs) / (time.perf_counter() - t0)
        err = [np.abs(o.astype(np.int16) - t).mean() for o, t in zip(out, tiles)]
        mx = max(int(np.abs(o.astype(np.int16) - t).max()) for o, t in zip(out, tiles))
        kib = np.mean([len(b) for b in blobs]) / 1024
        print(f"{name:<26} {kib:9.1f} {kib * 1024 / src:8.2f}x {rate:9.0f} {np.mean(err):9.2f} {mx:8d}")


if __name__ == "__main__":
    main()
