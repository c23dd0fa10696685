"""Reading whole-slide images: readers (``readers/``), pyramid levels and true MPP, tissue detection,
discovery (``discover.py``; DICOM files grouped by series in ``dicom_series.py``), and the header
check every open starts with (``sniff.py``: refusals, truncation, which reader claims a format).

The ground floor every stage may use. MPP is always a measured microns-per-pixel from the file's
metadata (or an explicit override), never inferred from an objective-power string.
"""

from wsi_ssl.slide.readers import LevelInfo, MissingMPPError, SlideOpenError, SlideReader, open_slide

__all__ = ["LevelInfo", "MissingMPPError", "SlideOpenError", "SlideReader", "open_slide"]
