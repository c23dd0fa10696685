"""Colour fixes for slides whose pixel data disagrees with their metadata.

Some DICOM converters store JPEG frames in YCbCr (JFIF header, chroma subsampling) but tag the
image ``PhotometricInterpretation = RGB``. Decoders then return YCbCr values as if they were RGB:
tissue looks green-grey, tissue detection fails and embeddings are off-distribution. We detect that
mismatch from the first JPEG frame's own header, instead of trusting the tag, and convert.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

_SOI = b"\xff\xd8\xff"


def _jpeg_says_ycbcr(frame_head: bytes) -> bool:
    """True if a JPEG stream's header implies YCbCr: a JFIF APP0, or an Adobe APP14 with transform 1."""
    if frame_head[3:4] == b"\xe0" and frame_head[6:11] == b"JFIF\x00":
        return True
    pos = frame_head.find(b"\xff\xeeAdobe")
    if pos >= 0 and len(frame_head) > pos + 15:
        return frame_head[pos + 15] == 1
    return False


def dicom_frames_mislabelled_rgb(path: str | Path, properties: Mapping[str, str]) -> bool:
    """A DICOM slide tagged RGB whose JPEG frames are really YCbCr."""
    if properties.get("openslide.vendor") != "dicom":
        return False
    if properties.get("dicom.PhotometricInterpretation") != "RGB":
        return False
    if not properties.get("dicom.TransferSyntaxUID", "").startswith("1.2.840.10008.1.2.4.50"):
        return False  # only baseline JPEG carries this ambiguity
    from wsi_ssl.storage.paths import as_path, open_binary

    with open_binary(as_path(path), block_size=1 << 20) as f:  # a local file or a slide URL
        head = f.read(1 << 20)
    start = head.find(_SOI)
    return start >= 0 and _jpeg_says_ycbcr(head[start : start + 4096])


def ycbcr_to_rgb(image: np.ndarray) -> np.ndarray:
    """Full-range (JFIF) YCbCr -> RGB, uint8 in and out."""
    ycrcb = np.ascontiguousarray(image[..., [0, 2, 1]])
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
