"""``wsi-ssl tile --dry-run``: what a run would tile, and what would fail, before any work.

Discovery rules (DICOM series grouping, OME-Zarr folders, CSV names) and reader choice are where a
new cohort goes wrong; this opens each slide's headers the way the tiler will (same backend, same
MPP override) and prints one line per slide, so a user checks them in seconds. No tissue detection
and no pixels beyond what a reader reads to open a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.slide.readers import MissingMPPError, SlideOpenError, open_slide
from wsi_ssl.tiling.config import TileConfig


@dataclass
class DryRunRow:
    slide_id: str
    path: str
    reader: str = "-"
    mpp: str = "-"
    size: str = "-"
    problem: str = ""


def check_entry(entry: SlideEntry, cfg: TileConfig) -> DryRunRow:
    """Open ``entry`` as the tiler would and say what it found, or why tiling would fail."""
    row = DryRunRow(entry.slide_id, str(entry.path))
    override = entry.mpp if entry.mpp is not None else cfg.mpp_override
    try:
        with open_slide(entry.path, cfg.backend, mpp_override=override, fast_reads=False) as slide:
            row.reader = slide.backend
            w, h = slide.dimensions
            row.size = f"{w}x{h}"
            row.mpp = f"{slide.mpp:.4g} ({slide.mpp_source})" if slide.mpp else "missing"
            slide.require_mpp()
    except (SlideOpenError, MissingMPPError, ValueError) as exc:
        row.problem = str(exc)
    return row


def dry_run(entries: list[SlideEntry], cfg: TileConfig) -> int:
    """Print the table; 0 when every slide would open with an MPP, else 1."""
    rows = [check_entry(e, cfg) for e in entries]
    widths = [max(len(getattr(r, k)) for r in rows) for k in ("slide_id", "reader", "mpp", "size")]
    head = ("slide_id", "reader", "mpp", "size")
    widths = [max(w, len(h)) for w, h in zip(widths, head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  path")
    for r in rows:
        cells = (r.slide_id, r.reader, r.mpp, r.size)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + f"  {r.path}")
    failing = [r for r in rows if r.problem]
    for r in failing:
        print(f"  would fail: {r.slide_id}: {r.problem}")
    print(f"dry run: {len(rows)} slides found, {len(rows) - len(failing)} would tile, {len(failing)} would fail")
    return 1 if failing else 0
