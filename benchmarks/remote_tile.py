"""Tiling a small cohort read from a loopback S3 server, against the same slides on local disk.

The S3 server is moto's (``python -m moto.server``, its own process, on 127.0.0.1), reached only
through the standard ``AWS_ENDPOINT_URL``; the tiles go to a local folder in every run, so the
ratio isolates reading the slides. Runs alternate (local, s3, s3 without the region prefetch,
local, ...) in this one process; the median of each is reported. Ratio = local seconds / remote
seconds (1.0 = as fast as local disk).

    .venv/bin/python benchmarks/remote_tile.py --slides 4 --workers 2 --repeats 5

Needs the ``test`` extra (moto[server], s3fs). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server on port {port} did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slides", type=int, default=4)
    ap.add_argument("--size", type=int, default=4096, help="slide width in px (height 3/4 of it)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-baseline-prefetch", action="store_true", help="skip the s3 run without prefetch")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "wsi-ssl-bench-remote")
    args = ap.parse_args()

    from wsi_ssl.synthetic import write_slide

    slides = args.cache / "slides"
    slides.mkdir(parents=True, exist_ok=True)
    for i in range(args.slides):
        write_slide(
            slides / f"s{i}.tiff",
            width=args.size,
            height=args.size * 3 // 4,
            mpp=0.5,
            levels=3,
            seed=i,
            skip_existing=True,
        )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(port)
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
        )
        import fsspec

        fs = fsspec.filesystem("s3")
        fs.mkdir("bench")
        fs.put(str(slides) + "/", "bench/slides/", recursive=True)

        from wsi_ssl.slide.discover import discover_slides
        from wsi_ssl.slide.readers import remote
        from wsi_ssl.tiling.config import TileConfig
        from wsi_ssl.tiling.runner import run_tiling

        cfg = TileConfig(workers=args.workers, qc=False)
        variants = [("local", [str(slides)], True), ("s3", ["s3://bench/slides/"], True)]
        if not args.no_baseline_prefetch:
            variants.append(("s3-noprefetch", ["s3://bench/slides/"], False))
        times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        tiles = 0
        for _ in range(args.repeats):
            for name, inputs, prefetch in variants:
                remote.PREFETCH = prefetch  # forked workers inherit it
                out = args.cache / f"out-{name}"
                shutil.rmtree(out, ignore_errors=True)
                entries = discover_slides(inputs)  # type: ignore[arg-type]
                t0 = time.perf_counter()
                summary = run_tiling(entries, out, cfg, progress=False)
                seconds = time.perf_counter() - t0
                assert summary.failed == 0, summary.failures
                tiles = summary.tiles
                times[name].append(seconds)
                print(f"{name:13s} {summary.done} slides {summary.tiles} tiles {seconds:.2f} s", flush=True)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        print(f"{tiles} tiles, {args.workers} workers, median of {args.repeats}; load {os.getloadavg()[0]:.1f}")
        for name in med:
            print(f"  {name:13s} {med[name]:.2f} s  ratio local/{name} = {med['local'] / med[name]:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
