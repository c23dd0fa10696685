"""Which slides a run (and each of its ranks) embeds, and which it skips or refuses up front.

Everything here is decided from the files alone, so every job of an array and every rank of a
multi-GPU run computes the same plan without talking to the others:

- ``--shard I/N`` picks a disjoint subset of stores by name (job arrays, ``wsi_ssl.shard``);
- a slide whose feature file exists is complete (files are renamed into place) and is skipped,
  unless another encoder wrote it, which is refused rather than silently mixed;
- an incomplete store, or one whose tile MPP is off the encoder's by more than the tolerance,
  is refused with a message, and the run goes on with the others;
- within a job, slides are dealt to ranks by tile count (largest first, to the least loaded),
  so ranks finish together even when slide sizes vary tenfold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from wsi_ssl.shard import Shard
from wsi_ssl.storage.paths import AnyPath
from wsi_ssl.stores.features import FeatureFileError, feature_path, read_feature_attrs
from wsi_ssl.stores.tile_store import TileStore, TileStoreError, find_tile_stores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideJob:
    """One slide to embed: its store, its output file, and what the writer needs to know."""

    slide_id: str
    store: AnyPath  # a folder or an object-storage URL (docs/storage.md)
    out: AnyPath
    n_tiles: int
    tile_size: int
    mpp: float


@dataclass
class Plan:
    todo: list[SlideJob] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # complete feature files already there
    failed: dict[str, str] = field(default_factory=dict)  # slide_id -> why it was refused


def mpp_mismatch(store_mpp: float, encoder_mpp: float | None, tolerance: float) -> str | None:
    """Why a store's tile MPP does not fit the encoder, or None when it does (or is unknown)."""
    if encoder_mpp is None or encoder_mpp <= 0:
        return None
    rel = abs(store_mpp - encoder_mpp) / encoder_mpp
    if rel <= tolerance + 1e-9:
        return None
    return (
        f"tiles are at {store_mpp:.4g} um/px but the encoder was trained at {encoder_mpp:.4g} um/px "
        f"({rel:.0%} apart, tolerance {tolerance:.0%}); retile at {encoder_mpp:.4g} um/px or raise mpp_tolerance"
    )


def plan_slides(
    tiles_dir: AnyPath,
    out_dir: AnyPath,
    *,
    encoder_mpp: float | None,
    encoder_sha256: str,
    mpp_tolerance: float,
    shard: Shard,
) -> Plan:
    """Open each store of this job's shard once (attrs only) and sort it into todo/skipped/failed."""
    plan = Plan()
    stores = shard.select(find_tile_stores(tiles_dir), key=lambda p: p.name)
    if encoder_mpp is None:
        log.warning("the encoder's config has no mpp; the tile stores' MPP cannot be checked against it")
    for path in stores:
        slide_id = path.name[: -len(".zarr")]
        out = feature_path(out_dir, slide_id)
        if out.is_file():
            reason = _foreign_file(out, encoder_sha256)
            if reason:
                plan.failed[slide_id] = reason
            else:
                plan.skipped.append(slide_id)
            continue
        try:
            store = TileStore(path)
        except TileStoreError as exc:  # IncompleteStoreError included
            plan.failed[slide_id] = str(exc)
            continue
        bad_mpp = mpp_mismatch(store.mpp, encoder_mpp, mpp_tolerance)
        if bad_mpp:
            plan.failed[slide_id] = f"{path}: {bad_mpp}"
            continue
        plan.todo.append(SlideJob(slide_id, path, out, len(store), store.tile_size, store.mpp))
    return plan


def _foreign_file(out: AnyPath, encoder_sha256: str) -> str | None:
    """A complete feature file made by another encoder would silently mix two feature spaces."""
    try:
        attrs = read_feature_attrs(out)
    except (OSError, FeatureFileError) as exc:
        return f"{out}: exists but cannot be read ({exc}); delete it to redo the slide"
    theirs = str(attrs.get("encoder_sha256", ""))
    if encoder_sha256 and theirs and theirs != encoder_sha256:
        return (
            f"{out}: already written by another encoder (sha256 {theirs[:12]}..., this one {encoder_sha256[:12]}...); "
            "use another --out or delete the file"
        )
    return None


def assign_to_rank(jobs: list[SlideJob], rank: int, world_size: int) -> list[SlideJob]:
    """This rank's slides: largest first to the least-loaded rank (ties by name), in name order."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    loads = [0] * world_size
    mine: list[SlideJob] = []
    for job in sorted(jobs, key=lambda j: (-j.n_tiles, j.slide_id)):
        target = min(range(world_size), key=lambda r: (loads[r], r))
        loads[target] += max(job.n_tiles, 1)
        if target == rank:
            mine.append(job)
    return sorted(mine, key=lambda j: j.slide_id)
