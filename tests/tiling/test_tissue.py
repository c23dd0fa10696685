"""Tissue detection: follows the generator's truth, ignores pen ink, glass and black edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsi_ssl.slide.readers import open_slide
from wsi_ssl.slide.thumbnail import read_at_mpp
from wsi_ssl.slide.tissue import TissueConfig, detect_tissue, tile_tissue_fractions
from wsi_ssl.synthetic import truth_path_for


def truth_at(mask_shape: tuple[int, int], truth_file: Path) -> np.ndarray:
    import cv2

    classes = np.load(truth_file)["class_map"]
    # Stained tissue: tumour, stroma, lymphocytes. Fat is nearly unstained (white cells with thin
    # membranes) and, as in real slides, only partly found by a saturation-based detector.
    stained = (classes > 0) & (classes != 4)
    return cv2.resize(stained.astype(np.uint8), mask_shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_mask_follows_truth_and_skips_pen(slides_dir: Path) -> None:
    slide = open_slide(slides_dir / "pen.tiff")
    img, mpp = read_at_mpp(slide, 8.0)
    found = detect_tissue(img, mpp)
    truth = truth_at(found.mask.shape, truth_path_for(slides_dir / "pen.tiff"))
    assert found.pen.sum() > 50  # the generator drew ink
    import cv2

    near_ink = cv2.dilate(found.pen.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert iou(found.mask & ~near_ink, truth & ~near_ink) > 0.85
    # Ink on glass never becomes tissue; without the pen filter it does.
    ink_on_glass = found.pen & ~truth
    assert found.mask[ink_on_glass].mean() < 0.02
    naive = detect_tissue(img, mpp, TissueConfig(pen_filter=False))
    assert naive.mask[ink_on_glass].mean() > 0.5


def test_blank_glass_and_black_border_are_not_tissue() -> None:
    img = np.full((200, 300, 3), 240, np.uint8)
    img += np.random.default_rng(0).integers(0, 6, img.shape, dtype=np.uint8)
    img[:, :12] = 10  # scanner edge shadow
    found = detect_tissue(img, 8.0)
    assert found.mask.sum() == 0


def test_tile_fractions_from_summed_area_table() -> None:
    from wsi_ssl.slide.tissue import TissueMask

    mask = np.zeros((10, 10), bool)
    mask[:5, :] = True  # top half tissue; mask px = 8 um, slide px = 0.5 um -> 16 slide px per mask px
    tm = TissueMask(mask, np.zeros_like(mask), 8.0, 0.1)
    coords = np.array([[0, 0], [0, 80 - 32], [0, 96]])  # top, straddling the edge, bottom
    frac = tile_tissue_fractions(tm, coords, 64, 0.5)
    assert frac.tolist() == [1.0, 0.5, 0.0]


def test_slide_edge_artefact_is_not_tissue(tmp_path: Path) -> None:
    from wsi_ssl.synthetic import write_slide

    path = tmp_path / "edge.tiff"
    write_slide(path, width=2048, height=1536, mpp=0.5, levels=3, seed=5, edge_artifacts=True)
    img, mpp = read_at_mpp(open_slide(path), 8.0)
    found = detect_tissue(img, mpp)
    truth = truth_at(found.mask.shape, truth_path_for(path))
    import cv2

    far_from_tissue = ~cv2.dilate(truth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    dark = (img.max(axis=2) < 130) & far_from_tissue  # the scanner's dark band along one edge
    assert dark.sum() > 20
    assert found.mask[dark].mean() < 0.05
    assert iou(found.mask, truth) > 0.7
