"""The embedding loop: plan -> rank's slides -> in-order batches -> encoder -> one h5 per slide.

Lightning Fabric sets up the processes (one per GPU, across nodes; a single process on CPU or
one GPU), so the same loop runs everywhere; each rank takes a disjoint, deterministic set of
slides (``plan.assign_to_rank``) and no gradients or DDP wrapping are involved. Batches come
from ``dataset.TileBatches`` in order while workers decode the next ones; features are
streamed into a temporary h5 per slide and renamed when the slide is complete. A slide that
fails is reported and dropped; the others go on, and the summary says what failed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wsi_ssl.config import ConfigError, dump_config
from wsi_ssl.embed.config import EmbedConfig
from wsi_ssl.embed.dataset import TileBatches, make_loader
from wsi_ssl.embed.plan import Plan, SlideJob, assign_to_rank, plan_slides
from wsi_ssl.embed.preprocess import Preprocess
from wsi_ssl.embed.writers import SlideWriters
from wsi_ssl.encoders.load import encoder_kind, load_encoder
from wsi_ssl.shard import parse_shard
from wsi_ssl.stores.encoder_dir import EncoderConfig, read_encoder_config

log = logging.getLogger(__name__)
_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class EmbedSummary:
    """What one rank did; ``ok`` is False when any slide (on any rank) failed."""

    slides: int = 0
    tiles: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    failed_all_ranks: int = 0

    @property
    def ok(self) -> bool:
        return self.failed_all_ranks == 0 and not self.failed

    @property
    def tiles_per_second(self) -> float:
        return self.tiles / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"embedded {self.slides} slide(s), {self.tiles} tiles in {self.seconds:.1f} s "
            f"({self.tiles_per_second:.1f} tiles/s); {len(self.skipped)} skipped (complete); {len(self.failed)} failed"
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device: {exc}") from None


def _make_fabric(cfg: EmbedConfig, device: torch.device) -> Any:
    from lightning.fabric import Fabric

    # Several processes per node are one per GPU, or CPU processes talking over gloo (a CPU-only
    # cluster, and the multi-process tests); a named GPU (cuda:1) or mps is one process.
    if device.type == "cuda" and device.index is not None:
        devices: Any = [device.index]
    elif device.type in ("cuda", "cpu"):
        devices = cfg.devices
    else:
        devices = 1
    multi = (isinstance(devices, int) and devices > 1) or cfg.num_nodes > 1
    return Fabric(
        accelerator=device.type,
        devices=devices,
        num_nodes=cfg.num_nodes,
        strategy="ddp" if multi else "auto",
        precision="32-true",  # autocast is applied around the forward only, see _Encoder
    )


def _cpu_threads(requested: int, processes: int = 1) -> int:
    """``requested``, else this process's share of the cores (several CPU ranks share a node's cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return requested or max(1, cores // processes)


class _Pending:
    """A batch's features on their way back to the host: ``result`` waits for them."""

    def __init__(self, feats: torch.Tensor, done: Any = None) -> None:
        self.feats, self.done = feats, done

    def result(self) -> np.ndarray:
        if self.done is not None:
            self.done.synchronize()
        return self.feats.numpy()


class _Encoder:
    """The model on its device, its preprocessing and its autocast, called on one batch."""

    def __init__(self, model: torch.nn.Module, device: torch.device, pre: Preprocess | None, precision: str) -> None:
        self.model, self.device, self.pre = model, device, pre
        self.autocast_dtype = _AUTOCAST[precision]

    def submit(self, tiles: torch.Tensor) -> _Pending:
        """Queue the forward and the copy of its features to pinned host memory; don't wait.

        On a GPU this returns as soon as the kernels are queued, so the host writes the previous
        batch's features and takes the next batch while this one runs: the GPU is never left
        idle waiting for the host between batches.
        """
        with torch.inference_mode():
            x = tiles.to(self.device, non_blocking=True)
            if self.pre is not None:  # preprocessing on the device (GPU runs)
                x = self.pre(x)
            if self.autocast_dtype is None:
                y = self.model(x)
            else:
                with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                    y = self.model(x)
            if y.ndim != 2:
                raise ValueError(f"the encoder returned {tuple(y.shape)}, expected pooled features [B, D]")
            if self.device.type != "cuda":
                return _Pending(y.float().cpu())
            host = torch.empty(y.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(y, non_blocking=True)  # widened on the GPU, then copied
            done = torch.cuda.Event()
            done.record()
            return _Pending(host, done)


def run_embed(cfg: EmbedConfig) -> EmbedSummary:
    """Embed every slide of this job's shard (and this rank's share of it); see module doc."""
    from wsi_ssl.console import quiet_lightning

    with quiet_lightning():  # no Fabric boilerplate (accelerator lines, Tensor Core hint)
        return _run_embed(cfg)


def _run_embed(cfg: EmbedConfig) -> EmbedSummary:
    tiles_dir, encoder_spec, out_dir = cfg.require_paths()
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.precision == "fp16":
        raise ConfigError("precision: fp16 autocast is for GPUs; this run is on the CPU, use bf16 or fp32")
    try:
        shard = parse_shard(cfg.shard)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    fabric = _make_fabric(cfg, device)
    fabric.launch()
    device = fabric.device if device.type == "cuda" else device
    if device.type == "cpu":
        torch.set_num_threads(_cpu_threads(cfg.threads, cfg.devices))

    # An encoder dir's config.json says all the plan and the workers need, so the workers start
    # decoding while the weights load. A preset's weights must be found (and hashed) first, since
    # the plan refuses feature files another encoder wrote; a timm name must be built to know its
    # input size.
    enc = read_encoder_config(encoder_spec) if encoder_kind(encoder_spec) == "dir" else None
    model = None
    if enc is None:
        model, enc = load_encoder(encoder_spec, cfg.encoder_weights)
    plan: Plan = plan_slides(
        tiles_dir,
        out_dir,
        encoder_mpp=enc.mpp,
        encoder_sha256=enc.sha256,
        mpp_tolerance=cfg.mpp_tolerance,
        shard=shard,
    )
    rank, world = fabric.global_rank, fabric.world_size
    jobs = assign_to_rank(plan.todo, rank, world)
    summary = EmbedSummary(skipped=plan.skipped if rank == 0 else [], failed=dict(plan.failed) if rank == 0 else {})
    for slide_id, why in summary.failed.items():
        log.error("slide %s refused: %s", slide_id, why)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out_dir / "embed_config.yaml")

    pre = Preprocess.from_encoder_config(enc)
    in_workers = cfg.preprocess_on == "worker" or (cfg.preprocess_on == "auto" and device.type == "cpu")
    dataset = TileBatches(jobs, cfg.batch_size, pre if in_workers else None)
    batches = iter(
        make_loader(
            dataset, cfg.workers, cfg.prefetch_factor, pin_memory=device.type == "cuda", yield_cpu=device.type == "cpu"
        )
    )
    if model is None:
        model, enc = load_encoder(encoder_spec, cfg.encoder_weights)
    model = model.to(device).eval()
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    encode = _Encoder(model, device, None if in_workers else pre, cfg.precision)  # type: ignore[arg-type]  # compiled: still a module to call
    _embed_jobs(jobs, batches, encode, enc, cfg, summary, rank)

    summary.failed_all_ranks = len(summary.failed)
    if world > 1:
        total = fabric.all_reduce(torch.tensor(len(summary.failed), device=device), reduce_op="sum")
        summary.failed_all_ranks = int(total.item())
    return summary


def _embed_jobs(
    jobs: list[SlideJob],
    batches: Iterator[dict[str, Any]],
    encode: _Encoder,
    enc: EncoderConfig,
    cfg: EmbedConfig,
    summary: EmbedSummary,
    rank: int,
) -> None:
    """Consume the in-order batches: forward, then each segment's rows to its slide's file."""
    from tqdm.auto import tqdm

    writers = SlideWriters(jobs, enc, cfg.precision, cfg.dtype, summary.failed)
    for j, job in enumerate(jobs):  # empty slides get an empty file: no batch will come for them
        if job.n_tiles == 0:
            writers.write(j, 0, np.empty((0, int(enc.embed_dim)), dtype=np.float32))
    writers.finish()
    total = sum(j.n_tiles for j in jobs)
    bar = tqdm(
        total=total,
        unit="tile",
        dynamic_ncols=True,
        mininterval=1.0,
        disable=not cfg.progress or rank != 0 or total == 0,
        desc=f"embed {enc.name or enc.arch}",
    )
    t0 = time.perf_counter()

    def land(segments: list[tuple[int, int, int]], pending: _Pending) -> None:
        try:
            feats = pending.result()
        except RuntimeError as exc:  # an error raised by the device while it ran the batch
            for j, start, _ in segments:
                writers.fail(j, f"forward failed on a batch holding its tiles {start}+: {exc}")
            return
        row = 0
        for j, start, n in segments:
            writers.write(j, start, feats[row : row + n])
            row += n
        bar.update(row)

    # One batch in flight: batch i+1 is queued on the device before batch i's features are
    # read back and written, so writing and batch hand-over overlap the forward pass.
    in_flight: tuple[list[tuple[int, int, int]], _Pending] | None = None
    try:
        for item in batches:
            for j, why in item["errors"]:
                writers.fail(int(j), str(why))
            segments = [(int(j), int(start), int(n)) for j, start, n in item["segments"]]
            if all(j in writers.bad for j, _, _ in segments):
                continue
            try:
                pending = encode.submit(item["tiles"])
            except (RuntimeError, ValueError) as exc:
                for j, start, _ in segments:
                    writers.fail(j, f"forward failed on a batch holding its tiles {start}+: {exc}")
                continue
            if in_flight is not None:
                land(*in_flight)
            in_flight = (segments, pending)
        if in_flight is not None:
            land(*in_flight)
        writers.finish()
    finally:
        writers.abort()
        bar.close()
    summary.slides, summary.tiles = writers.closed, writers.closed_tiles
    summary.seconds = time.perf_counter() - t0
