"""Generated H&E-like demo slides and cohorts with known ground truth.

``write_slide`` renders one pyramidal TIFF and its truth; ``make_cohort`` writes a cohort with a
slide table whose biomarker, survival and TIL score are planted in the tissue (the rules are in
``wsi_ssl.synthetic.cohort``); ``tile_labels`` labels tiles from the truth.
"""

from wsi_ssl.synthetic.cohort import make_cohort
from wsi_ssl.synthetic.slide_writer import write_slide
from wsi_ssl.synthetic.truth import (
    CLASS_NAMES,
    SlideTruth,
    class_fractions,
    load_truth,
    tile_labels,
    truth_path_for,
)

__all__ = [
    "CLASS_NAMES",
    "SlideTruth",
    "class_fractions",
    "load_truth",
    "make_cohort",
    "tile_labels",
    "truth_path_for",
    "write_slide",
]
