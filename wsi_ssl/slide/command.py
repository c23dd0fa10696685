"""``wsi-ssl info SLIDE``: what a slide file holds, as the tiler will see it."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from wsi_ssl.slide.readers import backend_names

    p = sub.add_parser("info", help="print a slide's reader, format, channels, levels, MPP and associated images")
    p.add_argument("slide", help="a slide file, a DICOM series folder (or one of its files), or an OME-Zarr folder")
    p.add_argument("--backend", choices=backend_names(), default="auto")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from wsi_ssl.slide.discover import SlideListError, folder_slide
    from wsi_ssl.slide.readers import SlideOpenError, open_slide

    path = Path(args.slide)
    if path.is_dir():
        try:
            entry = folder_slide(path)
        except SlideListError as exc:
            print(f"wsi-ssl info: {exc}", file=sys.stderr)
            return 2
        if entry is None:
            print(f"wsi-ssl info: {path} is a folder without a slide (.dcm files or OME-Zarr)", file=sys.stderr)
            return 2
        path = entry.path
    try:
        with open_slide(path, args.backend) as slide:
            info = slide.describe()
    except SlideOpenError as exc:
        print(f"wsi-ssl info: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    mpp = (
        f"{info['mpp']:.4f} um/px ({info['mpp_source']})" if info["mpp"] else "MISSING (use --mpp-override when tiling)"
    )
    print(f"slide      {info['path']}")
    print(f"reader     {info['backend']} (pixels: {info['pixel_backend']})    vendor {info['vendor']}")
    names = f" ({', '.join(info['channel_names'])})" if info["channel_names"] else ""
    print(
        f"format     {info['format']}    channels {info['channels']}{names}    photometric {info['photometric'] or '?'}"
    )
    print(f"size       {info['dimensions'][0]} x {info['dimensions'][1]} px")
    print(f"mpp        {mpp}")
    print(f"objective  {info['objective_power'] or 'unknown'}")
    if info["color_fix"]:
        print(f"colour     {info['color_fix']} (frames are YCbCr though tagged RGB)")
    print("levels     level  width x height   downsample   mpp")
    for lv in info["levels"]:
        m = f"{lv['mpp']:.4f}" if lv["mpp"] else "-"
        print(f"           {lv['level']:>5}  {lv['width']:>6} x {lv['height']:<7} {lv['downsample']:>10.4f}   {m}")
    print(f"associated {', '.join(info['associated_images']) or 'none'}")
    return 0
