"""Tissue detection against the true tissue map of the generated benchmark slide, fat on and off.

    python benchmarks/tissue.py [--slide PATH] [--real SVS --mask PNG]

Uses the slide of benchmarks/tile.py (generated once and cached; its ``.truth.npz`` holds the class
map it was rendered from). For each ``tissue.fat`` setting, runs the tiler's own planning steps
(``read_at_mpp`` at the mask MPP, ``detect_tissue``, ``tile_tissue_fractions`` on the default
224 px / 0.5 um grid) and compares the kept tiles (tissue fraction >= 0.25) with the tiles whose
true tissue fraction is >= 0.25:

  recall     kept and truly tissue / truly tissue
  precision  kept and truly tissue / kept
  empty kept kept tiles under 25% real tissue;  missed fat: truly-tissue tiles dropped that are mostly fat

With ``--real SVS --mask PNG`` (e.g. CMU-1-Small-Region.svs and
tests/slide/data/CMU-1-Small-Region.tissue.png, a hand-checked mask at 1/8 of level 0), also prints
the Dice of the detected mask and the per-tile agreement (tissue fraction >= 0.25 on the default
grid) against that reference, for both settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from wsi_ssl.slide.readers import open_slide  # noqa: E402
from wsi_ssl.slide.thumbnail import read_at_mpp  # noqa: E402
from wsi_ssl.slide.tissue import TissueConfig, TissueMask, detect_tissue, tile_tissue_fractions  # noqa: E402
from wsi_ssl.synthetic.truth import BACKGROUND, FAT, load_truth, truth_path_for  # noqa: E402
from wsi_ssl.tiling.config import TileConfig  # noqa: E402
from wsi_ssl.tiling.grid import grid_positions, make_plan, to_level0  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", type=Path, help="a generated slide with its .truth.npz (default: the tile benchmark's)")
    ap.add_argument("--real", type=Path, help="a real slide with a reference mask (--mask)")
    ap.add_argument("--mask", type=Path, help="reference tissue mask PNG of --real at 1/8 of level 0")
    args = ap.parse_args()
    if args.real is not None:
        real_slide(args.real, args.mask)
    if args.slide is None:
        from tile import bench_slide

        args.slide = bench_slide()
    truth = load_truth(truth_path_for(args.slide))
    cfg = TileConfig()
    with open_slide(args.slide) as slide:
        slide_mpp = slide.require_mpp()
        plan = make_plan(slide.levels, cfg.mpp, cfg.tile_size, cfg.stride, cfg.mpp_tolerance)
        lv = slide.levels[plan.level]
        coords = to_level0(grid_positions(plan, lv.width, lv.height), plan)
        image, mpp = read_at_mpp(slide, max(cfg.tissue.mask_mpp, slide_mpp))
    cell_mpp = slide_mpp * truth.downsample
    true_tissue = TissueMask(truth.class_map != BACKGROUND, truth.class_map == FAT, cell_mpp, 0.0)
    true_frac = tile_tissue_fractions(true_tissue, coords, plan.extent_level0, slide_mpp)
    fat_frac = tile_tissue_fractions(
        TissueMask(truth.class_map == FAT, true_tissue.pen, cell_mpp, 0.0), coords, plan.extent_level0, slide_mpp
    )
    real = true_frac >= cfg.min_tissue
    print(f"slide {args.slide.name}: {len(coords):,} grid tiles, {int(real.sum()):,} with >= 25% real tissue")
    for fat in ("exclude", "include"):
        found = detect_tissue(image, mpp, cfg.tissue.model_copy(update={"fat": fat}))
        kept = tile_tissue_fractions(found, coords, plan.extent_level0, slide_mpp) >= cfg.min_tissue
        hit = int((kept & real).sum())
        missed_fat = int((real & ~kept & (fat_frac >= 0.5 * true_frac)).sum())
        print(
            f"fat={fat:<8} kept {int(kept.sum()):>6,}  recall {hit / max(int(real.sum()), 1):.3f}  "
            f"precision {hit / max(int(kept.sum()), 1):.3f}  empty kept {int((kept & ~real).sum()):>4}  "
            f"missed {int((real & ~kept).sum()):>4} (mostly fat: {missed_fat})"
        )
    print(f"default: fat={TissueConfig().fat}")


def real_slide(path: Path, mask_png: Path) -> None:
    import cv2
    import numpy as np

    ref = cv2.imread(str(mask_png), cv2.IMREAD_GRAYSCALE) > 0
    cfg = TileConfig()
    with open_slide(path) as slide:
        slide_mpp = slide.require_mpp()
        plan = make_plan(slide.levels, cfg.mpp, cfg.tile_size, cfg.stride, cfg.mpp_tolerance)
        lv = slide.levels[plan.level]
        coords = to_level0(grid_positions(plan, lv.width, lv.height), plan)
        image, mpp = read_at_mpp(slide, max(cfg.tissue.mask_mpp, slide_mpp))
    scale = slide.dimensions[0] / ref.shape[1]
    reference = tile_tissue_fractions(
        TissueMask(ref, ref & False, slide_mpp * scale, 0.0), coords, plan.extent_level0, slide_mpp
    )
    for fat in ("exclude", "include"):
        found = detect_tissue(image, mpp, cfg.tissue.model_copy(update={"fat": fat}))
        det = cv2.resize(found.mask.astype(np.uint8), ref.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        dice = 2 * (det & ref).sum() / (det.sum() + ref.sum())
        kept = tile_tissue_fractions(found, coords, plan.extent_level0, slide_mpp) >= cfg.min_tissue
        agree = (kept == (reference >= cfg.min_tissue)).mean()
        print(
            f"{path.name} fat={fat:<8} Dice {dice:.3f}  per-tile agreement {agree:.3f} "
            f"({int(kept.sum())} tissue tiles, reference {int((reference >= cfg.min_tissue).sum())})"
        )


if __name__ == "__main__":
    main()
