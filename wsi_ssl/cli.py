"""The ``wsi-ssl`` command: parses arguments and hands them to one stage's command module.

Kept thin on purpose. Each stage owns ``wsi_ssl/<stage>/command.py`` with a
``register(subparsers)`` function that adds its subcommand(s) and sets ``func``; heavy imports
(torch, openslide) happen inside ``func`` so ``wsi-ssl --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from wsi_ssl import __version__
from wsi_ssl.config import ConfigError

# Stage command modules, in pipeline order. A module listed here must define register(subparsers).
COMMAND_MODULES = (
    "wsi_ssl.slide.command",  # info
    "wsi_ssl.synthetic.command",  # demo-cohort
    "wsi_ssl.tiling.command",  # tile
    "wsi_ssl.export.command",  # export-geojson
    "wsi_ssl.pretrain.command",  # pretrain, export
    "wsi_ssl.encoders.command",  # encoders list / show
    "wsi_ssl.embed.command",  # embed
    "wsi_ssl.evaluate.command",  # evaluate
    "wsi_ssl.mil.command",  # mil train / mil predict
    "wsi_ssl.serve.command",  # serve
    "wsi_ssl.pipeline.command",  # run
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsi-ssl",
        description="Pathology foundation-model pipeline: tile -> pretrain -> embed -> mil.",
    )
    parser.add_argument("--version", action="version", version=f"wsi-ssl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:  # a module that cannot be imported is a broken install: fail loudly
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Our own info lines; other libraries' (e.g. numexpr's thread count) only with --verbose.
    logging.getLogger("wsi_ssl").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"wsi-ssl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
