"""A labelled patch set from the demo cohort's renderer: its tissue classes, two staining "sites".

Classes (``PATCH_CLASSES``): low- and high-grade tumour, stroma, lymphocytes, fat.

``wsi-ssl evaluate --dataset csv --data OUT/patches.csv --mpp MPP`` reads it. Each site is one
lab: a single :class:`~wsi_ssl.synthetic.stain.StainStyle` for all its patches, site A near the
reference staining and site B visibly different (stronger haematoxylin, paler eosin, turned stain
vectors, a warmer glass), which is the between-lab shift the robustness index measures. Patches
are cut from single-class canvases rendered by the same code as the demo slides
(``wsi_ssl.synthetic.texture.render_rgb``), at the quickstart's tile scale by default (64 px at
1.0 um/px), so a quickstart encoder sees what it was trained on. Both sites appear in every split.

``OUT/patches.csv`` has columns ``path,label,split,site``; images are ``OUT/<site>/<class>/*.png``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from wsi_ssl.synthetic.stain import E_REFERENCE, H_REFERENCE, StainStyle
from wsi_ssl.synthetic.texture import TissueStyle, render_rgb
from wsi_ssl.synthetic.truth import FAT, LYMPHOCYTES, STROMA, TUMOR

SITES = ("site_a", "site_b")
# (class name, generator class id, high-grade tumour morphology). Background is left out: at the
# quickstart's 64 um field of view, empty glass and a patch inside one ~80 um fat cell look alike.
# Tumour is split by grade (the demo cohort's biomarker morphology: larger, pleomorphic nuclei),
# a class pair that colour does not separate.
PATCH_CLASSES: tuple[tuple[str, int, bool], ...] = (
    ("tumor_low_grade", TUMOR, False),
    ("tumor_high_grade", TUMOR, True),
    ("stroma", STROMA, False),
    ("lymphocytes", LYMPHOCYTES, False),
    ("fat", FAT, False),
)
SPLIT_SHARES = (("train", 0.6), ("val", 0.1), ("test", 0.3))


def site_stain(site: str) -> StainStyle:
    """Site A: the reference staining. Site B: another lab's protocol and scanner."""
    if site == "site_a":
        return StainStyle.reference()
    h = H_REFERENCE + np.array([0.08, -0.06, 0.05])
    e = E_REFERENCE + np.array([0.10, -0.05, -0.06])
    return StainStyle(h / np.linalg.norm(h), e / np.linalg.norm(e), 1.35, 0.7, np.array([247.0, 238.0, 228.0]))


def slide_stain(site: StainStyle, rng: np.random.Generator, jitter: float) -> StainStyle:
    """One slide of a site: the site's protocol with the slide-to-slide variation of the demo cohort."""
    own = StainStyle.sample(rng, jitter)
    ref = StainStyle.reference()

    def turn(base: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
        out = np.clip(base + (v - r), 0.02, None)
        return out / np.linalg.norm(out)

    return StainStyle(
        turn(site.h_vector, own.h_vector, ref.h_vector),
        turn(site.e_vector, own.e_vector, ref.e_vector),
        site.h_strength * own.h_strength,
        site.e_strength * own.e_strength,
        np.clip(site.glass + (own.glass - ref.glass), 200, 255),
    )


def _canvas(label: int, high_grade: bool, side: int, mpp: float, seed: int, stain: StainStyle) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.full((side, side), label, dtype=np.uint8)
    return render_rgb(rng, labels, mpp, TissueStyle(high_grade=high_grade, stromal_til=0.2), stain)


def make_patch_set(
    out: str | Path,
    per_class: int = 40,
    size: int = 64,
    mpp: float = 1.0,
    seed: int = 0,
    slides: int = 4,
    slide_jitter: float = 1.0,
) -> Path:
    """Write ``per_class`` patches per tissue class and site; returns the CSV path.

    Each class of each site is cut from ``slides`` canvases, each stained as its own slide
    (``slide_jitter``: the demo cohort's per-slide variation), so colour alone does not tell
    the classes apart and an encoder has to see the tissue.
    """
    out = Path(out)
    per_slide = -(-per_class // slides)
    grid = int(np.ceil(np.sqrt(per_slide)))
    rows: list[dict[str, str]] = []
    for s_i, site in enumerate(SITES):
        base = site_stain(site)
        for c_i, (name, label, high_grade) in enumerate(PATCH_CLASSES):
            folder = out / site / name
            folder.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, s_i, c_i])
            splits = _split_labels(per_class, rng)
            canvases = [
                _canvas(
                    label, high_grade, grid * size, mpp, int(rng.integers(2**31)), slide_stain(base, rng, slide_jitter)
                )
                for _ in range(slides)
            ]
            for k in range(per_class):
                canvas = canvases[k % slides]
                y, x = divmod(k // slides, grid)
                patch = canvas[y * size : (y + 1) * size, x * size : (x + 1) * size]
                path = folder / f"{name}_{k:04d}.png"
                cv2.imwrite(str(path), patch[..., ::-1])
                rows.append({"path": str(path.relative_to(out)), "label": name, "split": splits[k], "site": site})
    table = out / "patches.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "split", "site"])
        w.writeheader()
        w.writerows(rows)
    return table


def _split_labels(n: int, rng: np.random.Generator) -> list[str]:
    counts = [int(round(n * share)) for _, share in SPLIT_SHARES]
    counts[0] = n - sum(counts[1:])
    labels = [name for (name, _), c in zip(SPLIT_SHARES, counts, strict=True) for _ in range(c)]
    return [labels[i] for i in rng.permutation(n)]
