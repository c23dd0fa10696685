"""``wsi-ssl encoders list|show``: the zoo's presets, and whether their weights are on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

LIST_KEYS = ("name", "embed_dim", "params", "mpp", "input_size", "license", "gated", "source", "weights_found")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "encoders",
        help="list the public encoder presets (UNI2-h, Virchow2, ...) and where their weights are",
        description="The encoder zoo: every preset name works as --encoder in embed, serve and the pipeline. "
        "Weights are read from the Hugging Face cache (HF_HOME / HF_HUB_CACHE) or --encoder-weights, never downloaded.",
    )
    sub = p.add_subparsers(dest="encoders_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="one row per preset")
    lst.add_argument("--json", action="store_true", help="a JSON list of objects with the columns as keys")
    lst.set_defaults(func=run_list)
    show = sub.add_parser("show", help="everything a preset records, with the source of each number")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)


def rows() -> list[dict[str, Any]]:
    from wsi_ssl.encoders.registry import get_preset, preset_names
    from wsi_ssl.encoders.weights import weights_found

    out = []
    for name in preset_names():
        preset = get_preset(name)
        out.append({**preset.summary(), "weights_found": weights_found(preset)})
    return out


def run_list(args: argparse.Namespace) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    header = ("name", "embed_dim", "params", "mpp", "input", "license", "gated", "weights", "source")
    lines = [header]
    for r in table:
        lines.append(
            (
                r["name"],
                str(r["embed_dim"]),
                _millions(r["params"]),
                "-" if r["mpp"] is None else f"{r['mpp']:g}",
                str(r["input_size"]),
                r["license"],
                "yes" if r["gated"] else "no",
                "found" if r["weights_found"] else "missing",
                r["source"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    return 0


def run_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from wsi_ssl.encoders.registry import get_preset
    from wsi_ssl.encoders.weights import WeightsNotFound, find_weights

    try:
        preset = get_preset(args.name)
    except KeyError as exc:
        print(f"wsi-ssl encoders show: {exc.args[0]}", file=sys.stderr)
        return 2
    record = asdict(preset)
    try:
        source = find_weights(preset)
        record["weights"] = {"files": [str(f) for f in source.files], "revision": source.revision}
    except WeightsNotFound as exc:
        record["weights"] = {"missing": str(exc)}
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return 0
    for key, value in record.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")
    return 0


def _millions(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"
