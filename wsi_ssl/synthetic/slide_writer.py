"""Render one synthetic H&E slide and write it as a pyramidal tiled TIFF with its ground truth.

The file is a "generic tiled TIFF" as OpenSlide (openslide-bin 4.x) and tiffslide read it: one
tiled RGB page per level, each half the size of the one before (level k is a 2^k downsample),
JPEG (YCbCr 4:2:0) tiles by default, and X/YResolution in pixels per centimetre so both readers
report the microns per pixel (``openslide.mpp-x`` / ``tiffslide.mpp-x``). Levels are separate
pages rather than SubIFDs because OpenSlide's generic-TIFF reader only sees top-level pages.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import tifffile

from wsi_ssl.synthetic.artefacts import draw_edge_artefacts, draw_pen_marks
from wsi_ssl.synthetic.layout import MAP_DOWNSAMPLE, class_layout, upsample_labels
from wsi_ssl.synthetic.stain import StainStyle
from wsi_ssl.synthetic.texture import TissueStyle, render_rgb
from wsi_ssl.synthetic.truth import BACKGROUND, SlideTruth, load_truth, save_truth, truth_path_for

Compression = Literal["jpeg", "none", "zlib"]

# Bump when the rendering changes, so reruns of make_cohort regenerate older slides.
GENERATOR_VERSION = 7


def generator_params(**arguments: object) -> str:
    """Canonical JSON of write_slide's arguments (path excluded) plus the generator version."""
    return json.dumps({"generator_version": GENERATOR_VERSION, **arguments}, sort_keys=True)


def is_generated(path: str | Path, params: str) -> bool:
    """True if ``path`` and its truth exist and were written with exactly ``params``."""
    path = Path(path)
    truth_file = truth_path_for(path)
    if not (path.is_file() and truth_file.is_file()):
        return False
    try:
        return load_truth(truth_file).params == params
    except (OSError, ValueError, KeyError):
        return False  # unreadable truth: regenerate


def render_slide(
    *,
    width: int,
    height: int,
    mpp: float,
    seed: int,
    tumor_fraction: float,
    fat_fraction: float | None = None,
    lymph_fraction: float | None = None,
    high_grade: bool | None = None,
    stromal_til: float | None = None,
    stain_jitter: float = 1.0,
    pen_marks: bool = False,
    edge_artifacts: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Level-0 RGB uint8 ``[height, width, 3]`` and its class map (one cell per MAP_DOWNSAMPLE px).

    Unset morphology knobs are drawn from the seed. Separate random streams drive layout,
    texture, stain and artefacts, so turning pen marks on does not move the tissue.
    """
    if width < 16 or height < 16:
        raise ValueError(f"width and height must be at least 16 pixels, got width={width}, height={height}")
    if mpp <= 0:
        raise ValueError(f"mpp must be positive, got {mpp}")
    streams = np.random.SeedSequence(seed).spawn(5)
    knobs, layout_rng, texture_rng, stain_rng, artefact_rng = (np.random.default_rng(s) for s in streams)
    fat_fraction = float(knobs.uniform(0.05, 0.15)) if fat_fraction is None else fat_fraction
    lymph_fraction = float(knobs.uniform(0.05, 0.4)) if lymph_fraction is None else lymph_fraction
    high_grade = bool(knobs.random() < 0.5) if high_grade is None else high_grade
    stromal_til = lymph_fraction if stromal_til is None else stromal_til
    fat_fraction = min(fat_fraction, 1.0 - tumor_fraction)

    ds = MAP_DOWNSAMPLE
    map_shape = (-(-height // ds), -(-width // ds))
    cmap = class_layout(
        layout_rng,
        map_shape,
        cell_um=ds * mpp,
        tumor_fraction=tumor_fraction,
        fat_fraction=fat_fraction,
        lymph_fraction=lymph_fraction,
    )
    labels = upsample_labels(layout_rng, cmap, ds, (height, width), mpp)
    rgb = render_rgb(
        texture_rng,
        labels,
        mpp,
        TissueStyle(high_grade=high_grade, stromal_til=stromal_til),
        StainStyle.sample(stain_rng, stain_jitter),
    )
    del labels
    if edge_artifacts:
        draw_edge_artefacts(rgb, artefact_rng)
    if pen_marks:
        ys, xs = np.nonzero(cmap != BACKGROUND)
        centre = (float(xs.mean() * ds), float(ys.mean() * ds)) if len(xs) else (width / 2, height / 2)
        draw_pen_marks(rgb, artefact_rng, centre, n_strokes=int(artefact_rng.integers(2, 4)))
    return rgb, cmap


def pyramid(level0: np.ndarray, levels: int) -> list[np.ndarray]:
    """Level 0 and its successive 2x area-averaged downsamples (stops before a side reaches 0)."""
    out = [level0]
    for _ in range(1, levels):
        prev = out[-1]
        h, w = prev.shape[0] // 2, prev.shape[1] // 2
        if h < 1 or w < 1:
            break
        out.append(cv2.resize(prev, (w, h), interpolation=cv2.INTER_AREA))
    return out


def write_pyramid_tiff(
    path: str | Path,
    levels: list[np.ndarray],
    *,
    mpp: float | None,
    tile: int = 256,
    compression: Compression = "jpeg",
    jpeg_quality: int = 90,
) -> None:
    """Write the levels as a tiled pyramidal TIFF (see module docstring). ``mpp=None``: no resolution."""
    if tile % 16:
        raise ValueError(f"tile must be a multiple of 16 (TIFF requirement), got {tile}")
    if compression not in ("jpeg", "none", "zlib"):
        raise ValueError(f"compression must be 'jpeg', 'none' or 'zlib', got {compression!r}")
    codecs: dict[str, dict[str, Any]] = {
        "jpeg": {"compression": "jpeg", "compressionargs": {"level": int(jpeg_quality)}},
        "zlib": {"compression": "zlib", "compressionargs": {"level": 6}},
        "none": {"compression": None},
    }
    codec = codecs[compression]
    bigtiff = sum(level.nbytes for level in levels) > 3_500_000_000
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tif:
        for k, image in enumerate(levels):
            extra: dict[str, Any] = {}
            if mpp is not None:
                pixels_per_cm = 1e4 / (mpp * 2**k)
                extra = {"resolution": (pixels_per_cm, pixels_per_cm), "resolutionunit": "CENTIMETER"}
            tif.write(
                image,
                tile=(tile, tile),
                photometric="rgb",
                subfiletype=0 if k == 0 else 1,
                description=f"wsi_ssl synthetic H&E level {k}" if k == 0 else None,
                metadata=None,
                **codec,
                **extra,
            )


def write_slide(
    path: str | Path,
    *,
    width: int = 4096,
    height: int = 3072,
    mpp: float = 0.5,
    levels: int = 3,
    tile: int = 256,
    seed: int = 0,
    tumor_fraction: float = 0.3,
    pen_marks: bool = False,
    write_mpp: bool = True,
    jpeg_quality: int = 90,
    compression: Compression = "jpeg",
    high_grade: bool | None = None,
    fat_fraction: float | None = None,
    lymph_fraction: float | None = None,
    stromal_til: float | None = None,
    stain_jitter: float = 1.0,
    edge_artifacts: bool = False,
    skip_existing: bool = False,
) -> SlideTruth:
    """Generate a slide, write it to ``path`` and its truth to ``truth_path_for(path)``.

    ``high_grade`` adds high-grade foci to the tumour (the biomarker's morphology; drawn from the
    seed if None). The TIFF is written under a temporary name and renamed, so a crash never leaves a
    half-written slide behind. With ``skip_existing`` a slide already written with the same
    arguments (recorded in its truth file) is kept as it is. Returns the truth.
    """
    path = Path(path)
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if tile < 16 or tile % 16:
        raise ValueError(f"tile must be a positive multiple of 16 (TIFF requirement), got {tile}")
    if compression not in ("jpeg", "none", "zlib"):
        raise ValueError(f"compression must be 'jpeg', 'none' or 'zlib', got {compression!r}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    if not 0.0 <= tumor_fraction <= 1.0:
        raise ValueError(f"tumor_fraction must be in [0, 1], got {tumor_fraction}")
    params = generator_params(
        width=width,
        height=height,
        mpp=mpp,
        levels=levels,
        tile=tile,
        seed=seed,
        tumor_fraction=tumor_fraction,
        pen_marks=pen_marks,
        write_mpp=write_mpp,
        jpeg_quality=jpeg_quality,
        compression=compression,
        high_grade=high_grade,
        fat_fraction=fat_fraction,
        lymph_fraction=lymph_fraction,
        stromal_til=stromal_til,
        stain_jitter=stain_jitter,
        edge_artifacts=edge_artifacts,
    )
    if skip_existing and is_generated(path, params):
        return load_truth(truth_path_for(path))
    rgb, cmap = render_slide(
        width=width,
        height=height,
        mpp=mpp,
        seed=seed,
        tumor_fraction=tumor_fraction,
        fat_fraction=fat_fraction,
        lymph_fraction=lymph_fraction,
        high_grade=high_grade,
        stromal_til=stromal_til,
        stain_jitter=stain_jitter,
        pen_marks=pen_marks,
        edge_artifacts=edge_artifacts,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        write_pyramid_tiff(
            tmp,
            pyramid(rgb, levels),
            mpp=mpp if write_mpp else None,
            tile=tile,
            compression=compression,
            jpeg_quality=jpeg_quality,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return save_truth(truth_path_for(path), cmap, MAP_DOWNSAMPLE, mpp, params)
