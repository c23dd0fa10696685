"""Load on the embeddings API against a bare FastAPI endpoint, side by side, on loopback only.

    python benchmarks/serve.py [--clients 32] [--requests 400] [--tiles 20000] [--dim 768] [--rounds 3]

Builds a cohort with one slide of ``--tiles`` x ``--dim`` float32 features, then starts two
single-worker uvicorn servers on 127.0.0.1:
  ours: ``wsi-ssl serve``'s app (key check, access log to a file, catalog, h5 reads, encoding);
  bare: a FastAPI app with no middleware whose endpoints return a constant body of exactly the
        bytes ours returned for the same request (so both send the same amount of data).
For each endpoint it alternates bare and ours for ``--rounds`` rounds; each round sends a fixed
number of requests from ``--clients`` concurrent keep-alive connections (a bounded load: at most
``--requests`` requests and ``--max-seconds`` seconds per round) and records requests per second
and p50/p99 latency. Tile pages are drawn at random offsets so no page is served twice in a
row. It prints the median of the rounds and, last, the throughput ratios ours/bare (target >= 0.7).

With ``--in-process`` no server is started: both apps are called as ASGI apps in this process,
alternating, and what is compared is CPU time per request (all threads of this process). Other
processes' load does not enter it, so it is the figure to trust on a busy shared machine; it
leaves out uvicorn's HTTP parsing and socket work (the same for both apps), so its ratio is
lower than the HTTP one.

Endpoints: the slide embedding (JSON), a 1,000-tile page as .npy, and the same page as JSON.
The load generator is a minimal asyncio HTTP/1.1 client in this process, so the client's own
cost (identical for both servers) is small; on a busy 2-core box figures are noisy, which is why
the rounds alternate and the ratios, not the absolute numbers, are the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PAGE = 1000
NPY = "application/x-npy"


# ---- servers (run as child processes) --------------------------------------------------------


def serve_ours(workdir: Path, port: int) -> None:
    import uvicorn

    from wsi_ssl.config import load_config
    from wsi_ssl.serve.app import create_app
    from wsi_ssl.serve.config import ServeConfig

    cfg = load_config(ServeConfig, workdir / "serve.yaml")
    uvicorn.run(create_app(cfg), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_bare(workdir: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(workdir), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def bare_app(workdir: Path) -> Any:
    from fastapi import FastAPI, Response

    app = FastAPI()
    bodies = {name: (workdir / f"{name}.body").read_bytes() for name in ("embedding", "tiles_npy", "tiles_json")}

    @app.get("/embedding")
    async def embedding() -> Response:
        return Response(bodies["embedding"], media_type="application/json")

    @app.get("/tiles_npy")
    async def tiles_npy() -> Response:
        return Response(bodies["tiles_npy"], media_type=NPY)

    @app.get("/tiles_json")
    async def tiles_json() -> Response:
        return Response(bodies["tiles_json"], media_type="application/json")

    return app


# ---- in-process mode: CPU time per request, both apps called as ASGI in this process ----------


def _asgi_scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    raw, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw,
        "raw_path": raw.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _cpu_per_request(app: Any, paths: list[str], headers: dict[str, str], n: int) -> float:
    """Seconds of this process's CPU time (all threads) per request, over ``n`` requests."""
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(int(message["status"]))

    t0 = time.process_time()
    for i in range(n):
        await app(_asgi_scope(paths[i % len(paths)], headers), receive, send)
    cpu = time.process_time() - t0
    if statuses != {200}:
        raise RuntimeError(f"non-200 answers: {statuses}")
    return cpu / n


def in_process(
    workdir: Path, ours_paths: dict[str, tuple[list[str], dict[str, str]]], args: argparse.Namespace
) -> None:
    """CPU per request of ours and bare, alternating, in one process (immune to other processes'
    load, unlike the HTTP rounds; it leaves out uvicorn's HTTP work, the same for both, so its
    ratio is lower than the HTTP one)."""
    from fastapi.testclient import TestClient

    from wsi_ssl.config import load_config
    from wsi_ssl.serve.app import create_app
    from wsi_ssl.serve.config import ServeConfig

    ours = create_app(load_config(ServeConfig, workdir / "serve.yaml"))
    with TestClient(ours) as client:  # runs the app's startup (gc.freeze) like a server would
        for name, (paths, headers) in ours_paths.items():
            (workdir / f"{name}.body").write_bytes(client.get(paths[0], headers=headers).content)
        bare = bare_app(workdir)
        ratios = {}
        for name in args.only or list(ours_paths):
            paths, headers = ours_paths[name]
            n = args.requests
            asyncio.run(_cpu_per_request(ours, paths, headers, n // 4))  # warm-up
            asyncio.run(_cpu_per_request(bare, [f"/{name}"], {}, n // 4))
            runs: dict[str, list[float]] = {"bare": [], "ours": []}
            for _ in range(args.rounds):
                runs["bare"].append(asyncio.run(_cpu_per_request(bare, [f"/{name}"], {}, n)))
                runs["ours"].append(asyncio.run(_cpu_per_request(ours, paths, headers, n)))
            best = {who: min(r) * 1e6 for who, r in runs.items()}
            ratios[name] = best["bare"] / best["ours"]
            print(
                f"{name:10s} CPU per request (best of {args.rounds} x {n}): bare {best['bare']:.1f} us, ours {best['ours']:.1f} us",
                flush=True,
            )
        print(
            "CPU ratio bare/ours, in-process (no HTTP work on either side): "
            + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
        )


# ---- load generator --------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def _load(
    port: int, paths: list[str], headers: dict[str, str], clients: int, n_requests: int, max_seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(n_requests))
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    deadline = time.perf_counter() + max_seconds
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                path = paths[i % len(paths)]
                t0 = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
                status, _ = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    return {
        "rps": len(ms) / wall,
        "p50": ms[len(ms) // 2],
        "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "n": len(ms),
        "errors": errors,
    }


def load(port: int, paths: list[str], headers: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    return asyncio.run(_load(port, paths, headers, args.clients, args.requests, args.max_seconds))


# ---- setup -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kind: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--_serve", kind, "--_workdir", str(workdir), "--_port", str(port)]
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited with {proc.returncode}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start within 60 s")


def make_cohort(workdir: Path, n_tiles: int, dim: int) -> str:
    from wsi_ssl.serve.keys import add_key
    from wsi_ssl.stores.features import write_features

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n_tiles, dim)).astype(np.float32)
    coords = np.stack([np.arange(n_tiles) % 200 * 224, np.arange(n_tiles) // 200 * 224], axis=1)
    (workdir / "cohort").mkdir()
    attrs = {"slide_id": "bench", "encoder": "bench", "encoder_sha256": "0" * 64, "mpp": 0.5, "tile_size": 224}
    write_features(workdir / "cohort" / "bench.h5", feats, coords, attrs)
    key = add_key(workdir / "keys.json", "bench", ["bench"])
    (workdir / "serve.yaml").write_text(
        json.dumps(
            {
                "cohorts": {"bench": str(workdir / "cohort")},
                "keys_file": str(workdir / "keys.json"),
                "access_log": str(workdir / "access.log"),
                "limits": {"max_page_size": PAGE},
            }
        )
    )
    return key


def fetch(port: int, path: str, headers: dict[str, str]) -> bytes:
    import httpx

    r = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=60)
    r.raise_for_status()
    return r.content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=400, help="requests per round (bounded load)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time cap per round")
    parser.add_argument("--tiles", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("embedding", "tiles_npy", "tiles_json"), action="append")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure CPU time per request of both apps called in this process (robust on a busy machine)",
    )
    parser.add_argument("--_serve", choices=("ours", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--_workdir", help=argparse.SUPPRESS)
    parser.add_argument("--_port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._serve:
        (serve_ours if args._serve == "ours" else serve_bare)(Path(args._workdir), args._port)
        return

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # On SIGTERM, unwind through the finally below so the two server processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="wsi_ssl_serve_bench_") as tmp:
        workdir = Path(tmp)
        key = make_cohort(workdir, args.tiles, args.dim)
        auth = {"X-API-Key": key}
        base = "/v1/cohorts/bench/slides/bench"
        rng = random.Random(0)
        offsets = [rng.randrange(0, args.tiles - PAGE + 1) for _ in range(args.requests)]
        ours_paths = {
            "embedding": ([f"{base}/embedding"], auth),
            "tiles_npy": ([f"{base}/tiles?offset={o}&limit={PAGE}" for o in offsets], {**auth, "Accept": NPY}),
            "tiles_json": ([f"{base}/tiles?offset={o}&limit={PAGE}" for o in offsets], auth),
        }
        if args.in_process:
            in_process(workdir, ours_paths, args)
            return
        procs = []
        try:
            ours, ours_port = start("ours", workdir)
            procs.append(ours)
            for name, (paths, headers) in ours_paths.items():
                (workdir / f"{name}.body").write_bytes(fetch(ours_port, paths[0], headers))
            bare, bare_port = start("bare", workdir)
            procs.append(bare)
            print(
                f"slide: {args.tiles} tiles x {args.dim} float32; {args.clients} clients; "
                f"{args.requests} requests/round, {args.rounds} rounds, alternating bare/ours"
            )
            ratios = {}
            for name in args.only or list(ours_paths):
                size = (workdir / f"{name}.body").stat().st_size
                paths, headers = ours_paths[name]
                load(ours_port, paths[: args.clients], headers, args)  # warm-up: open handles, caches, threads
                load(bare_port, [f"/{name}"], {}, args)
                runs: dict[str, list[dict[str, float]]] = {"bare": [], "ours": []}
                for _ in range(args.rounds):
                    runs["bare"].append(load(bare_port, [f"/{name}"], {}, args))
                    runs["ours"].append(load(ours_port, paths, headers, args))
                for who in ("bare", "ours"):
                    med = {k: statistics.median(r[k] for r in runs[who]) for k in ("rps", "p50", "p99")}
                    errors = sum(int(r["errors"]) for r in runs[who])
                    rounds = ", ".join(f"{r['rps']:.0f}" for r in runs[who])
                    print(
                        f"{name:10s} {size / 1e6:7.3f} MB  {who:4s}: {med['rps']:8.1f} req/s  "
                        f"p50 {med['p50']:7.1f} ms  p99 {med['p99']:7.1f} ms  (rounds: "
                        f"{rounds} req/s; non-200: {errors})",
                        flush=True,
                    )
                ratios[name] = statistics.median(o["rps"] / b["rps"] for o, b in zip(runs["ours"], runs["bare"]))
            print(
                "throughput ratio ours/bare (median of paired rounds; target >= 0.7): "
                + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()
