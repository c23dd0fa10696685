"""What a file is before any reader opens it: format, channels, and reasons to refuse it.

Readers answer "can my library decode this?", which is the wrong question for two kinds of file:
a fluorescence/multiplex image that a library happily decodes as RGB (QPTIFF: "no tissue"), and a
truncated file whose library error says nothing (``IndexError: index 0 out of range(0)``). So
``open_slide`` asks here first: a file this pipeline must not tile gets a ``refusal`` (raised as
``SlideRefusedError``, recorded in the manifest), and a damaged one a ``damage`` text that replaces
the libraries' errors if every reader then fails. ``format`` routes a file to the reader that
claims it (OME-TIFF to tiffslide, which reads its sub-IFD pyramid; OpenSlide sees level 0 only).

Sniffing reads headers only (TIFF IFDs through tifffile, DICOM headers through pydicom) and is
cached per (path, size, mtime), so the tiler's per-shard re-opens cost nothing.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Vendor formats no reader here decodes: named in the refusal, so the user knows what they have.
UNSUPPORTED_FORMATS = {
    ".isyntax": "Philips iSyntax",
    ".vsi": "Olympus/Evident cellSens VSI",
    ".kfb": "KFBio KFB",
    ".sdpc": "SQRAY SDPC",
    ".tmap": "UNIC TMAP",
    ".mdsx": "Motic MDSX",
    ".lif": "Leica LIF",
    ".nd2": "Nikon ND2",
    ".zvi": "Zeiss ZVI (use CZI)",
    ".dzi": "Deep Zoom (DZI) tile folder",
}

TIFF_SUFFIXES = {".tif", ".tiff", ".svs", ".ndpi", ".qptiff", ".btf", ".scn", ".bif", ".svslide"}
VL_WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage
_RGB_NAMES = {("r", "g", "b"), ("red", "green", "blue")}


@dataclass(frozen=True)
class FileFacts:
    format: str  # tiff | ome-tiff | qptiff | dicom | dicom-folder | czi | ome-zarr | other
    channels: int | None = None  # colour samples or image channels, as the header states
    channel_names: tuple[str, ...] = ()
    photometric: str | None = None  # TIFF/DICOM photometric interpretation
    refusal: str | None = None  # the file must not be tiled: say why, try no reader
    damage: str | None = None  # truncated/corrupt finding: the message if every reader fails
    notes: dict[str, str] = field(default_factory=dict)


def fluorescence_refusal(n: int, names: tuple[str, ...] | list[str]) -> str:
    named = f" ({', '.join(names)})" if names else ""
    return f"fluorescence/multiplex image with {n} channels{named}: this pipeline tiles brightfield H&E/IHC only"


def _is_multichannel(n: int, names: tuple[str, ...], photometric: str | None) -> bool:
    """More than three channels, or separate grey channels not named R, G, B."""
    if n > 3:
        return True
    if n > 1 and (photometric or "").upper() in ("MINISBLACK", "MONOCHROME2", "MONOCHROME1"):
        return tuple(x.lower() for x in names) not in _RGB_NAMES
    return False


def truncated_text(size: int, expected: int) -> str:
    return f"the file is truncated or corrupt (size {size:,} bytes, expected at least {expected:,})"


def _first_ifd_offset(path: Path) -> tuple[int, int] | None:
    """(offset of the first IFD, bytes needed to read its entry count), from the TIFF header."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:2] not in (b"II", b"MM"):
        return None
    e = "<" if head[:2] == b"II" else ">"
    magic = struct.unpack(e + "H", head[2:4])[0]
    if magic == 42 and len(head) >= 8:
        return struct.unpack(e + "I", head[4:8])[0], 2
    if magic == 43 and len(head) >= 16:
        return struct.unpack(e + "Q", head[8:16])[0], 8
    return None


def _channel_names_ome(xml: str) -> tuple[str, ...]:
    return tuple(re.findall(r'<Channel\b[^>]*\bName="([^"]*)"', xml))


_OME_UNIT_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}


def _ome_mpp(xml: str) -> float | None:
    """Level-0 microns per pixel from OME-XML ``Pixels PhysicalSizeX`` (default unit: µm)."""
    m = re.search(r'<Pixels\b[^>]*\bPhysicalSizeX="([0-9.eE+-]+)"', xml)
    if not m:
        return None
    unit = re.search(r'<Pixels\b[^>]*\bPhysicalSizeXUnit="([^"]+)"', xml)
    factor = _OME_UNIT_UM.get(unit.group(1) if unit else "µm")
    return float(m.group(1)) * factor if factor and float(m.group(1)) > 0 else None


def _qpi_name(description: str) -> str:
    m = re.search(r"<(?:Biomarker|Name)>([^<]*)</", description)
    return m.group(1).strip() if m else ""


def _sniff_tiff(path: Path) -> FileFacts:
    import tifffile

    size = path.stat().st_size
    first = _first_ifd_offset(path)
    if first is None:
        return FileFacts("other", damage=f"the file is not a TIFF although named {path.suffix} (bad header)")
    if first[0] + first[1] > size:
        return FileFacts("tiff", damage=truncated_text(size, first[0] + first[1]))
    logging.getLogger("tifffile").setLevel(logging.ERROR)  # its warnings repeat what we report
    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            if not pages:
                return FileFacts("tiff", damage=truncated_text(size, first[0] + first[1]))
            end = 0
            for page in pages:
                offs, counts = getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ())
                if len(offs):
                    end = max(end, max(int(o) + int(c) for o, c in zip(offs, counts)))
            page0 = tif.pages.first
            photometric = str(getattr(page0.photometric, "name", page0.photometric))
            damage = truncated_text(size, end) if end > size else None
            if tif.is_ome and tif.ome_metadata:
                names = _channel_names_ome(tif.ome_metadata)
                series = tif.series[0]
                n_c = series.get_shape(False)[series.get_axes(False).index("C")] if "C" in series.get_axes(False) else 1
                samples = int(page0.samplesperpixel)
                n = max(n_c, len(names)) if samples == 1 else samples
                facts = _facts("ome-tiff", n, names, photometric, damage)
                mpp = _ome_mpp(tif.ome_metadata)
                return FileFacts(**{**facts.__dict__, "notes": {"mpp": str(mpp)} if mpp else {}})
            if page0.is_qpi:
                descriptions = [str(getattr(p, "description", "") or "") for p in pages]
                full = [d for d in descriptions if "FullResolution" in d] or descriptions[:1]
                names = tuple(_qpi_name(d) for d in full)
                n = len(full) * int(page0.samplesperpixel)
                return _facts("qptiff", n, tuple(x for x in names if x), photometric, damage)
            n = int(page0.samplesperpixel)
            extra = len(page0.extrasamples) if getattr(page0, "extrasamples", None) else 0
            return _facts("tiff", n - extra, (), photometric, damage)
    except Exception as exc:  # noqa: BLE001 - a header tifffile cannot parse is the finding
        return FileFacts("tiff", damage=f"the file is truncated or corrupt ({exc})")


def _facts(fmt: str, n: int, names: tuple[str, ...], photometric: str | None, damage: str | None) -> FileFacts:
    refusal = fluorescence_refusal(n, names) if _is_multichannel(n, names, photometric) else None
    return FileFacts(fmt, n, names, photometric, refusal, damage)


def _sniff_dicom(path: Path) -> FileFacts:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable header is the finding
        return FileFacts("dicom", damage=f"not a readable DICOM file ({exc})")
    sop = str(ds.get("SOPClassUID", ""))
    photometric = str(ds.get("PhotometricInterpretation", "")) or None
    samples = int(ds.get("SamplesPerPixel", 0) or 0)
    paths = ds.get("OpticalPathSequence") or []
    names = tuple(str(p.get("OpticalPathDescription", "") or p.get("OpticalPathIdentifier", "")) for p in paths)
    if sop and sop != VL_WSI_SOP_CLASS:
        name = getattr(ds.SOPClassUID, "name", sop)
        return FileFacts("dicom", samples, (), photometric, f"a DICOM {name} file, not a whole-slide image")
    n = samples if samples != 1 else max(len(paths), 1)
    refusal = fluorescence_refusal(n, names) if samples == 1 and len(paths) > 1 else None
    return FileFacts("dicom", n, names, photometric, refusal)


def ome_multiscales(path: Path) -> dict[str, Any] | None:
    """The first ``multiscales`` entry of an OME-Zarr group at ``path`` (NGFF 0.4 or 0.5), else None."""
    if not (path.is_dir() and ((path / ".zattrs").is_file() or (path / "zarr.json").is_file())):
        return None
    import zarr

    try:
        attrs: dict[str, Any] = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # noqa: BLE001 - not a zarr group: not an OME-Zarr image
        return None
    meta: dict[str, Any] = attrs.get("ome", attrs)  # NGFF 0.5 nests its metadata under "ome"
    ms: Any = meta.get("multiscales")
    if not ms:
        return None
    entry = dict(ms[0])
    entry["_omero"] = meta.get("omero", {})
    return entry


def ome_zarr_facts(path: Path) -> FileFacts:
    """Channel count and names of an OME-Zarr image, refusing more than RGB."""
    ms = ome_multiscales(path)
    if ms is None:
        return FileFacts("other")
    import zarr

    axes = [a["name"] if isinstance(a, dict) else str(a) for a in ms.get("axes", ["t", "c", "z", "y", "x"])]
    arr = zarr.open_array(str(path / ms["datasets"][0]["path"]), mode="r")
    n = int(arr.shape[axes.index("c")]) if "c" in axes else 1
    names = tuple(str(c.get("label", "")) for c in ms["_omero"].get("channels", []) if c.get("label"))
    refusal = fluorescence_refusal(n, names) if n > 3 or n == 2 else None
    return FileFacts("ome-zarr", n, names, "RGB" if n == 3 else "MINISBLACK", refusal)


def _sniff_folder(path: Path) -> FileFacts:
    """An OME-Zarr image, or a folder of one DICOM series (its first file's facts)."""
    facts = ome_zarr_facts(path)
    if facts.format != "other":
        return facts
    first = next(iter(sorted(path.rglob("*.dcm"))), None)
    if first is None:
        return facts
    d = _sniff_dicom(first)
    return FileFacts("dicom-folder", d.channels, d.channel_names, d.photometric, d.refusal, d.damage)


def sniff(path: str | Path) -> FileFacts:
    """Facts about ``path`` from its headers (cached while the file is unchanged)."""
    if "://" in str(path):  # a slide URL (wsi_ssl/slide/readers/remote.py): headers are not sniffed remotely
        return FileFacts("other")
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return FileFacts("other")
    return _sniff_cached(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sniff_cached(path: str, size: int, mtime_ns: int) -> FileFacts:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in UNSUPPORTED_FORMATS:
        name = UNSUPPORTED_FORMATS[suffix]
        return FileFacts("other", refusal=f"{name} files are not supported: no reader here decodes {suffix}")
    if p.is_dir():
        return _sniff_folder(p)
    if suffix == ".czi":
        return FileFacts("czi")
    if suffix == ".dcm":
        return _sniff_dicom(p)
    if suffix in TIFF_SUFFIXES:
        return _sniff_tiff(p)
    return FileFacts("other")
