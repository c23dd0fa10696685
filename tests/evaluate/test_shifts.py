"""Shifts are deterministic and graded; stain normalisation (torchstain) undoes a stain change."""

from __future__ import annotations

import numpy as np

from wsi_ssl.evaluate.shifts import SHIFTS, apply_shift, hed_shift
from wsi_ssl.evaluate.stain_norm import StainNormalizer
from wsi_ssl.synthetic.patches import site_stain
from wsi_ssl.synthetic.texture import TissueStyle, render_rgb


def tissue(site: str, seed: int = 0, side: int = 64) -> np.ndarray:
    labels = np.full((side, side), 1, dtype=np.uint8)  # tumour
    return render_rgb(np.random.default_rng(seed), labels, 1.0, TissueStyle(), site_stain(site))


def test_hed_identity_and_grading() -> None:
    x = tissue("site_a")[None]
    same = hed_shift(x, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    assert np.abs(same.astype(int) - x).max() <= 1
    d = [np.abs(apply_shift(n, x).astype(int) - x).mean() for n in ("hed_weak", "hed_medium", "hed_strong")]
    assert 0 < d[0] < d[1] < d[2]


def test_every_shift_keeps_shape_and_is_deterministic() -> None:
    x = np.stack([tissue("site_a", s, 48) for s in range(2)])
    for name in SHIFTS:
        a, b = apply_shift(name, x), apply_shift(name, x)
        assert a.shape == x.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, x), name


def test_stain_normalisation_brings_site_b_to_site_a() -> None:
    ref, b = tissue("site_a", 0), tissue("site_b", 0)  # the same tissue, stained by two labs
    for method in ("macenko", "reinhard"):
        norm = StainNormalizer(method, ref)
        before = np.abs(b.astype(float) - ref).mean()
        after = np.abs(norm(b[None])[0].astype(float) - ref).mean()
        assert after < 0.6 * before, (method, before, after)
        assert norm.failed == 0


def test_macenko_leaves_a_patch_without_tissue_as_it_is() -> None:
    norm = StainNormalizer("macenko", tissue("site_a", 0))
    glass = np.full((1, 32, 32, 3), 240, dtype=np.uint8)
    np.testing.assert_array_equal(norm(glass), glass)
    assert norm.failed == 1
