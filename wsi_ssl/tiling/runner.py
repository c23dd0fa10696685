"""Tile a list of slides into tile stores, in parallel within and across slides.

The main process schedules and lays out stores: workers plan slides (open, MPP, tissue, grid)
and fill shards. As soon as a slide is planned its store is laid out under a temporary name and
its shards are queued, so the pool works on shards of several slides at once and no core idles
while a big slide finishes. A slide becomes visible (renamed into place, ``complete: true``) only
when every shard is written. Failures are per slide: recorded in the manifest, the run goes on.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from wsi_ssl.shard import Shard
from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.slide.readers import MissingMPPError, SlideOpenError
from wsi_ssl.storage.paths import AnyPath, as_path, is_upath
from wsi_ssl.stores.atomic import clean_partials, partial_path, publish, remove_path
from wsi_ssl.stores.codecs import tile_codec_kwargs
from wsi_ssl.stores.shard_writer import shard_target
from wsi_ssl.stores.tile_store import (
    TileArraysSpec,
    complete_attrs,
    create_tile_arrays,
    mark_complete,
    store_path,
)
from wsi_ssl.tiling.config import TileConfig
from wsi_ssl.tiling.manifest import Manifest, ManifestRow, manifest_path
from wsi_ssl.tiling.plan_slide import NoTissueError, SlidePlan
from wsi_ssl.tiling.workers import plan_task, preload, qc_task, shard_task, warm_task

log = logging.getLogger(__name__)


class OutputError(OSError):
    """The output folder cannot be created or written."""


class InlineExecutor(Executor):
    """Runs each task at submit time: ``workers=1`` needs no processes (and is easy to debug)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, like a pool would
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut


@dataclass
class _SlideState:
    entry: SlideEntry
    started: float
    plan: SlidePlan | None = None
    tmp: AnyPath | None = None
    pending: int = 0
    error: str = ""

    @property
    def qc_source(self) -> Path:
        """Hand-over file of the QC picture; named like a leftover of the temporary store, so a
        rerun's ``clean_partials`` removes it if this run is killed."""
        assert self.tmp is not None
        if is_upath(self.tmp):  # a store on object storage: the hand-over file stays local
            return Path(tempfile.gettempdir()) / f".{self.tmp.name}.qc-source-{os.getpid()}.npz"
        return self.tmp.with_name(self.tmp.name + ".qc-source.npz")


@dataclass
class TilingSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    tiles: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def line(self, out_dir: str | AnyPath) -> str:
        rate = self.tiles / self.seconds if self.seconds > 0 else 0.0
        total = self.done + self.failed + self.skipped
        return (
            f"tiled {self.done}/{total} slides ({self.failed} failed, {self.skipped} already complete), "
            f"{self.tiles:,} tiles in {self.seconds:.1f} s ({rate:,.0f} tiles/s) -> {out_dir}"
        )


def _mp_context() -> Any:
    """fork where available: workers start in milliseconds with every module already imported.

    Safe here because the scheduling process never opens a slide (workers do) and zarr resets its
    event loop in forked children; elsewhere (macOS, Windows) spawn.
    """
    import multiprocessing as mp

    return get_context(
        "fork"
        if "fork" in mp.get_all_start_methods() and os.name == "posix" and not sys.platform.startswith("darwin")
        else "spawn"
    )


def check_output_dir(out_dir: AnyPath) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output folder {out_dir} is not writable: {exc.strerror or exc}") from None


def _error_text(exc: BaseException) -> str:
    """The manifest's error: our own errors' messages as they are (they name the problem); an
    unexpected exception keeps its class name, which is then the clue."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (SlideOpenError, MissingMPPError, NoTissueError)):
        return text
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


def _discard(state: _SlideState) -> None:
    if state.tmp is not None:
        remove_path(state.tmp)
        remove_path(state.qc_source)


def _warm_zarr(cfg: TileConfig) -> None:
    """Create a tiny in-memory array of the run's layout while the first slides are planned, so
    laying out the first store (zarr's codec registry, its I/O loop) does not delay its shards."""
    import zarr

    zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=(1, 8, 8, 3),
        chunks=(1, 8, 8, 3),
        shards=(1, 8, 8, 3),
        dtype="uint8",
        **tile_codec_kwargs(cfg.codec, cfg.quality),
    )  # type: ignore[arg-type]


def run_tiling(
    entries: list[SlideEntry],
    out_dir: str | AnyPath,
    cfg: TileConfig,
    shard: Shard = Shard(0, 1),
    progress: bool = True,
) -> TilingSummary:
    out_dir = as_path(out_dir)  # a folder or an object-storage URL (docs/storage.md)
    check_output_dir(out_dir)
    if cfg.qc:
        (out_dir / "qc").mkdir(exist_ok=True)
    manifest = Manifest(manifest_path(out_dir, shard))
    summary = TilingSummary()
    t0 = time.perf_counter()
    todo: list[SlideEntry] = []
    for entry in shard.select(entries, key=lambda e: e.slide_id):
        final = store_path(out_dir, entry.slide_id)
        attrs = complete_attrs(final)
        if attrs is not None:
            summary.skipped += 1
            manifest.record(
                ManifestRow(
                    entry.slide_id,
                    str(entry.path),
                    "skipped",
                    int(attrs.get("n_tiles", 0)),
                    attrs.get("mpp"),
                    0.0,
                    "already complete",
                ),
                flush=False,
            )
        else:
            todo.append(entry)
    manifest.flush()  # once for all skipped slides, not once per slide
    workers = cfg.workers or os.cpu_count() or 1
    if workers > 1:
        preload()
    executor: Executor = (
        InlineExecutor() if workers == 1 else ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
    )
    bar = tqdm(total=0, unit="tile", disable=not progress, dynamic_ncols=True, desc="tiles")
    states: dict[Future, _SlideState] = {}
    queue = list(todo)
    in_flight: set[str] = set()
    max_slides = max(2, workers)

    def finish(state: _SlideState, status: str) -> None:
        seconds = time.perf_counter() - state.started
        sid = state.entry.slide_id
        in_flight.discard(sid)
        n = state.plan.n_tiles if state.plan else 0
        if status == "done":
            assert state.tmp is not None and state.plan is not None
            mark_complete(state.tmp, {"seconds": round(seconds, 2)})
            publish(state.tmp, store_path(out_dir, sid))
            summary.done += 1
            summary.tiles += n
        else:
            _discard(state)
            summary.failed += 1
            summary.failures.append((sid, state.error))
            tqdm.write(f"FAILED {sid}: {state.error}")
        mpp = state.plan.attrs["mpp"] if state.plan else None
        manifest.record(
            ManifestRow(sid, str(state.entry.path), status, n if status == "done" else 0, mpp, seconds, state.error)
        )
        bar.set_postfix_str(f"slides {summary.done + summary.failed}/{len(todo)}")

    def submit_plans() -> None:
        while queue and len(in_flight) < max_slides:
            entry = queue.pop(0)
            in_flight.add(entry.slide_id)
            final = store_path(out_dir, entry.slide_id)
            clean_partials(final)
            state = _SlideState(entry, time.perf_counter(), tmp=partial_path(final))
            states[executor.submit(plan_task, entry, cfg, state.qc_source)] = state

    def on_planned(state: _SlideState, plan: SlidePlan) -> None:
        state.plan = plan
        assert state.tmp is not None
        spec = TileArraysSpec(plan.n_tiles, cfg.tile_size, cfg.shard_tiles, cfg.codec, cfg.quality)
        create_tile_arrays(state.tmp, spec, plan.coords, plan.tissue, plan.attrs)
        target = shard_target(state.tmp)
        bar.total += plan.n_tiles
        bar.refresh()
        if plan.qc_source_path is not None:  # first in the queue: drawn while other workers fill shards
            qc_path = out_dir / "qc" / f"{plan.entry.slide_id}.png"
            states[executor.submit(qc_task, qc_path, plan.qc_source_path, plan.coords)] = state
            state.pending += 1
        mpp = plan.entry.mpp if plan.entry.mpp is not None else cfg.mpp_override
        step = max(1, min(cfg.shard_tiles, plan.n_tiles))
        for start in range(0, plan.n_tiles, step):
            fut = executor.submit(
                shard_task,
                plan.entry.path,
                plan.backend,
                mpp,
                plan.plan,
                plan.positions[start : start + step],
                state.tmp,
                start,
                cfg.read_block,
                target,
            )
            state.pending += 1
            states[fut] = state

    try:
        submit_plans()
        if workers > 1:  # workers without a slide to plan warm up meanwhile (results ignored)
            planning = [state.entry for state in states.values()]
            for i in range(workers - len(states)):
                executor.submit(warm_task, planning[i % len(planning)] if planning else None, cfg)
        _warm_zarr(cfg)  # and so does this process, after the workers are forked
        while states:
            done, _ = wait(list(states), return_when=FIRST_COMPLETED)
            for fut in done:
                state = states.pop(fut)
                exc = fut.exception()
                if state.plan is None:  # a plan task
                    if exc is not None:
                        state.error = _error_text(exc)
                        finish(state, "failed")
                    else:
                        on_planned(state, fut.result())
                        if state.pending == 0:
                            finish(state, "done")
                    continue
                state.pending -= 1
                if exc is not None and not state.error:
                    state.error = _error_text(exc)
                else:
                    bar.update(fut.result() if exc is None else 0)
                if state.pending == 0:
                    finish(state, "failed" if state.error else "done")
            submit_plans()
    finally:
        bar.close()
        executor.shutdown(wait=True, cancel_futures=True)
        for state in set(states.values()):
            _discard(state)
    summary.seconds = time.perf_counter() - t0
    return summary
