"""Generated H&E-like demo slides and cohorts with known ground truth.

``write_slide`` renders one pyramidal TIFF and its truth; ``make_cohort`` writes a cohort with a
slide table whose biomarker, survival and TIL score are planted in the tissue (the rules are in
``wsi_ssl.synthetic.cohort``); ``tile_labels`` labels tiles from the truth.

The names below are loaded on first use: ``wsi-ssl --help`` imports ``wsi_ssl.synthetic.command``
(``demo-cohort``), which must not pull in OpenCV, tifffile and the renderer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CLASS_NAMES": "wsi_ssl.synthetic.truth",
    "SlideTruth": "wsi_ssl.synthetic.truth",
    "class_fractions": "wsi_ssl.synthetic.truth",
    "load_truth": "wsi_ssl.synthetic.truth",
    "make_cohort": "wsi_ssl.synthetic.cohort",
    "tile_labels": "wsi_ssl.synthetic.truth",
    "truth_path_for": "wsi_ssl.synthetic.truth",
    "write_slide": "wsi_ssl.synthetic.slide_writer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
