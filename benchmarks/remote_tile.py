"""Tiling a small cohort read from a loopback S3 server, against the same slides on local disk.

The S3 server is moto's (``python -m moto.server``, its own process, on 127.0.0.1), reached only
through the standard ``AWS_ENDPOINT_URL``; the tiles go to a local folder in every run, so the
ratio isolates reading the slides. Runs alternate (local, s3, s3 with the reader's earlier
settings: tiffslide's decoder and 4 KiB merge gaps, s3 without the region prefetch, local, ...)
in this one process; the median of each is reported. Ratio = local seconds / remote
seconds (1.0 = as fast as local disk).

Where the time goes, per run: CPU seconds of the tiling workers and of moto's server process
(Linux ``/proc``), and the requests moto answered (its access log). Then one in-process run
(workers=1) counts the bytes and range requests fetched per tile against the compressed size of
the level-0 source tiles the kept tiles overlap (what any reader must fetch at least). First,
the CPU cost of one range request, here and in moto (``_request_costs``).

    .venv/bin/python benchmarks/remote_tile.py --slides 3 --workers 2 --repeats 2

Needs the ``test`` extra (moto[server], s3fs). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the tiling workers, once the pool is shut)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _requests(log: Path, start: int) -> dict[str, int]:
    """Requests moto logged after byte ``start`` of its access log, by kind."""
    with open(log) as f:
        f.seek(start)
        lines = f.read().splitlines()
    kinds: collections.Counter[str] = collections.Counter()
    for line in lines:
        m = re.search(r'"(GET|HEAD|PUT|POST|DELETE) (\S+)', line)
        if m:
            kinds["LIST" if m.group(1) == "GET" and "?" in m.group(2) else m.group(1)] += 1
    return dict(kinds)


def _needed_bytes(slide: Path, coords: list[list[int]], tile: int) -> int:
    """Compressed bytes of the level-0 source tiles that tiles at ``coords`` (level-0 px) overlap."""
    import numpy as np
    import tifffile

    with tifffile.TiffFile(slide) as tf:
        page = tf.pages.first
        counts = np.asarray(page.databytecounts)
        tw, across = int(page.tilewidth), -(-int(page.imagewidth) // int(page.tilewidth))
    need = {
        ty * across + tx
        for x, y in coords
        for ty in range(y // tw, (y + tile - 1) // tw + 1)
        for tx in range(x // tw, (x + tile - 1) // tw + 1)
    }
    return int(counts[sorted(need)].sum())


def _request_costs(fs: Any, key: str, moto_pid: int, n: int = 200) -> None:
    """CPU per 16 KiB range request in this process (s3fs: botocore, aiohttp) and in moto, one after
    another and as one concurrent ``cat_ranges`` batch; and the first request of a forked process
    (a tiling worker), which creates its S3 client."""
    starts = [i * 4096 for i in range(n)]
    for how in ("serial", "cat_ranges"):
        moto0, cpu0, t0 = _cpu_seconds(moto_pid), time.process_time(), time.perf_counter()
        if how == "serial":
            for start in starts:
                fs.cat_file(key, start=start, end=start + 16384)
        else:
            fs.cat_ranges([key] * n, starts, [start + 16384 for start in starts])
        wall, cpu, moto = time.perf_counter() - t0, time.process_time() - cpu0, _cpu_seconds(moto_pid) - moto0
        print(
            f"{n} range requests ({how}): {wall / n * 1e3:.1f} ms wall, CPU {cpu / n * 1e3:.1f} ms here "
            f"+ {moto / n * 1e3:.1f} ms in moto, per request"
        )
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # as a tiling worker: fsspec gives a forked process a new filesystem and client
        import fsspec

        cpu0, t0 = time.process_time(), time.perf_counter()
        fsspec.filesystem("s3").info(key)
        os.write(write, f"{time.perf_counter() - t0:.3f} s wall, {time.process_time() - cpu0:.3f} s CPU".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        print(f"first request of a forked process (creates its S3 client): {f.read()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slides", type=int, default=4)
    ap.add_argument("--size", type=int, default=4096, help="slide width in px (height 3/4 of it)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-baseline-prefetch", action="store_true", help="skip the s3 run without prefetch")
    ap.add_argument(
        "--no-baseline-tiffslide", action="store_true", help="skip the s3 run with tiffslide's decoder, 4 KiB gaps"
    )
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
    access_log = args.cache / "moto-access.log"
    log_file = open(access_log, "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_file,
        stderr=log_file,
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
        _request_costs(fs, "bench/slides/s0.tiff", server.pid)

        from wsi_ssl.slide.discover import discover_slides
        from wsi_ssl.slide.readers import remote
        from wsi_ssl.tiling.config import TileConfig
        from wsi_ssl.tiling.runner import run_tiling

        cfg = TileConfig(workers=args.workers, qc=False)
        s3 = ["s3://bench/slides/"]
        defaults = {"PREFETCH": remote.PREFETCH, "NATIVE": remote.NATIVE, "MERGE_GAP": remote.MERGE_GAP}
        variants: list[tuple[str, list[str], dict[str, Any]]] = [("local", [str(slides)], {}), ("s3", s3, {})]
        if not args.no_baseline_tiffslide:  # the reader before the native decoder and the 16 KiB gap
            variants.append(("s3-tiffslide", s3, {"NATIVE": False, "MERGE_GAP": 4096}))
        if not args.no_baseline_prefetch:
            variants.append(("s3-noprefetch", s3, {"PREFETCH": False}))
        times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        tiles = 0
        for _ in range(args.repeats):
            for name, inputs, settings in variants:
                for key, value in {**defaults, **settings}.items():
                    setattr(remote, key, value)  # forked workers inherit them
                out = args.cache / f"out-{name}"
                shutil.rmtree(out, ignore_errors=True)
                entries = discover_slides(inputs)  # type: ignore[arg-type]
                log_file.flush()
                mark, moto0, workers0 = access_log.stat().st_size, _cpu_seconds(server.pid), _children_cpu()
                t0 = time.perf_counter()
                summary = run_tiling(entries, out, cfg, progress=False)
                seconds = time.perf_counter() - t0
                time.sleep(0.2)  # moto writes its last log lines
                moto_cpu, workers_cpu = _cpu_seconds(server.pid) - moto0, _children_cpu() - workers0
                assert summary.failed == 0, summary.failures
                tiles = summary.tiles
                times[name].append(seconds)
                print(
                    f"{name:13s} {summary.done} slides {summary.tiles} tiles {seconds:.2f} s; CPU s: workers "
                    f"{workers_cpu:.2f}, moto {moto_cpu:.2f}; requests {_requests(access_log, mark)}",
                    flush=True,
                )
        med = {name: statistics.median(ts) for name, ts in times.items()}
        print(f"{tiles} tiles, {args.workers} workers, median of {args.repeats}; load {os.getloadavg()[0]:.1f}")
        for name in med:
            print(f"  {name:13s} {med[name]:.2f} s  ratio local/{name} = {med['local'] / med[name]:.2f}")

        # Bytes per tile: one run in this process (workers=1), where remote.fetched() sees every read.
        from wsi_ssl.stores.tile_store import TileStore

        for key, value in defaults.items():
            setattr(remote, key, value)
        out = args.cache / "out-bytes"
        shutil.rmtree(out, ignore_errors=True)
        before = remote.fetched()
        summary = run_tiling(
            discover_slides(["s3://bench/slides/"]), out, TileConfig(workers=1, qc=False), progress=False
        )
        got = remote.fetched()
        needed = files = 0
        for i in range(args.slides):
            coords = TileStore(out / f"s{i}.zarr").coords.tolist()  # level-0 px; slides are at the 0.5 um/px tiled
            needed += _needed_bytes(slides / f"s{i}.tiff", coords, cfg.tile_size)
            files += (slides / f"s{i}.tiff").stat().st_size
        fetched, n = got.bytes - before.bytes, max(summary.tiles, 1)
        print(
            f"bytes (workers=1): fetched {fetched:,} B in {got.requests - before.requests} range requests = "
            f"{fetched / n:,.0f} B/tile; level-0 source tiles the kept tiles overlap {needed / n:,.0f} B/tile; "
            f"fetched / needed {fetched / needed:.2f}; fetched / files {fetched / files:.2f}"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        log_file.close()


if __name__ == "__main__":
    main()
