"""One pretraining run: tile stores in, a run directory out.

RUN_DIR/
  config.yaml              the resolved config (what this run did)
  checkpoints/last.ckpt    the latest checkpoint (plus step-NNNNNNN.ckpt every ckpt_every steps)
  logs/vK/metrics.csv      CSV metrics, one segment per (re)start
  tb/vK/                   TensorBoard event files
  curves.png               loss, LR, momentum, RankMe, kNN against step
  summary.json             steps, seconds, first and last monitor values

Rerunning with the same ``--out`` resumes the run, or says it is finished; the config given now
wins, with the rules and messages of ``resume``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wsi_ssl.config import ConfigError, dump_config
from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.resume import RunDirError

log = logging.getLogger(__name__)

__all__ = ["RunDirError", "resolve_precision", "run_pretrain"]


def resolve_precision(cfg: PretrainConfig, gpu: bool) -> str:
    if cfg.trainer.precision != "auto":
        return "32-true" if cfg.trainer.precision == "32" else cfg.trainer.precision
    return "bf16-mixed" if gpu else "32-true"


def _strategy(cfg: PretrainConfig) -> Any:
    if cfg.trainer.strategy != "fsdp":
        return cfg.trainer.strategy
    from lightning.pytorch.strategies import FSDPStrategy
    from timm.models.vision_transformer import Block

    # One FSDP unit per transformer block: student and teacher are sharded alike, so the EMA
    # update works on matching local shards.
    return FSDPStrategy(auto_wrap_policy={Block}, sharding_strategy="FULL_SHARD")


def _segment(run_dir: Path) -> str:
    logs = run_dir / "logs"
    n = len([p for p in logs.iterdir() if p.is_dir()]) if logs.is_dir() else 0
    return f"v{n}"


def _check_preset_mpp(cfg: PretrainConfig, tile_mpp: float | None) -> None:
    """Continuing a preset on tiles at another magnification than it learnt is allowed, but said."""
    if not cfg.backbone.init or tile_mpp is None:
        return
    from wsi_ssl.encoders.registry import get_preset

    preset_mpp = get_preset(cfg.backbone.init).mpp
    if preset_mpp and abs(tile_mpp - preset_mpp) / preset_mpp > 0.10:
        log.warning(
            "backbone.init=%s was trained at %.3g um/px but these tiles are at %.3g um/px; continued "
            "pretraining will shift it to the new scale",
            cfg.backbone.init,
            preset_mpp,
            tile_mpp,
        )


def run_pretrain(cfg: PretrainConfig, tiles: Sequence[str], out: str | Path, resume: bool = False) -> Path:
    """Train as configured, continuing the run in ``out`` if it has one; returns the run dir.

    ``resume=True`` insists on continuing (a RunDirError when there is nothing to continue).
    Raises NonFiniteLossError if the loss diverges.
    """
    from wsi_ssl.console import quiet_lightning

    with quiet_lightning():
        return _run_pretrain(cfg, tiles, Path(out), resume)


def _run_pretrain(cfg: PretrainConfig, tiles: Sequence[str], run_dir: Path, must_resume: bool) -> Path:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from wsi_ssl.pretrain import resume
    from wsi_ssl.pretrain.data import PretrainDataModule, TileDataset, TileIndex, resolve_stores
    from wsi_ssl.pretrain.export import CHECKPOINT_DIR, LAST_CHECKPOINT
    from wsi_ssl.pretrain.labels import HeldOutTiles, build_knn_sets
    from wsi_ssl.pretrain.module import PretrainModule
    from wsi_ssl.pretrain.monitor import Embedder, MonitorCallback
    from wsi_ssl.pretrain.plots import plot_curves

    ckpt_dir = run_dir / CHECKPOINT_DIR
    last = ckpt_dir / LAST_CHECKPOINT
    point = resume.find_resume_point(ckpt_dir, last, must_resume)
    if point is not None and point.step >= cfg.trainer.max_steps and (run_dir / "summary.json").is_file():
        log.info(
            "%s is finished: %d of trainer.max_steps=%d steps done; nothing to train (raise trainer.max_steps "
            "to train on, or choose another --out for a new run)",
            run_dir,
            point.step,
            cfg.trainer.max_steps,
        )
        return run_dir
    config_changes = resume.announce(point, cfg, run_dir) if point is not None else {}
    gpu = torch.cuda.is_available() and cfg.trainer.accelerator != "cpu"
    if cfg.trainer.strategy == "fsdp" and not gpu:
        raise ConfigError("trainer.strategy: fsdp needs GPUs (Lightning's FSDP is CUDA-only); use ddp or auto on CPU")
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    tile_inputs = list(tiles) or cfg.data.tiles
    if not tile_inputs:
        raise RunDirError("no tile stores: pass --tiles DIR... or set data.tiles in the config")
    index = TileIndex.build(resolve_stores(tile_inputs), cfg.data.min_tissue)
    train_pos, holdout_pos = index.split_holdout(cfg.data.holdout_tiles, cfg.data.seed)
    log.info(
        "%d tiles in %d stores (tile %d px, mpp %s): %d to train, %d held out",
        len(index),
        len(index.paths),
        index.tile_size,
        index.mpp,
        len(train_pos),
        len(holdout_pos),
    )
    holdout_images = TileDataset(index, holdout_pos).load_all() if len(holdout_pos) else torch.empty(0)
    knn_sets = build_knn_sets(cfg, HeldOutTiles(index, holdout_pos, holdout_images))

    _check_preset_mpp(cfg, index.mpp)
    # A resumed run's weights come from its checkpoint: the starting weights are not read again.
    module = PretrainModule(cfg.model_dump(mode="json"), tile_mpp=index.mpp, load_init_weights=point is None)
    if point is not None:  # before anything in the run dir changes
        resume.check_fits(point, {k: tuple(v.shape) for k, v in module.state_dict().items()}, config_changes)
        resume.announce_changes(point, config_changes)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    data = PretrainDataModule(TileDataset(index, train_pos), cfg.data.batch_size, cfg.data.num_workers, cfg.data.seed)
    monitor = MonitorCallback(
        holdout_images,
        Embedder(cfg.crops.global_size, cfg.augment.mean, cfg.augment.std),
        cfg.trainer.val_every,
        knn_sets,
        cfg.monitor.knn.k,
    )
    segment = _segment(run_dir)
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="step-{step:07d}",
        every_n_train_steps=cfg.trainer.ckpt_every,
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
    )
    t = cfg.trainer
    trainer = L.Trainer(
        # Lightning's SLURM auto-requeue writes its hpc_ckpt_N.ckpt here, where resume finds it.
        default_root_dir=ckpt_dir,
        max_steps=t.max_steps,
        max_epochs=-1,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,  # type: ignore[dict-item]
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(cfg),
        precision=resolve_precision(cfg, gpu),  # type: ignore[arg-type]
        gradient_clip_val=cfg.optim.grad_clip or None,
        log_every_n_steps=t.log_every,
        logger=[
            CSVLogger(run_dir, name="logs", version=segment),
            TensorBoardLogger(run_dir, name="tb", version=segment),
        ],
        callbacks=[checkpoint, monitor],
        use_distributed_sampler=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=True,
    )
    if t.compile and gpu:
        module.student.compile()  # in place: state-dict keys (checkpoints, export) stay unchanged
    started = time.time()
    trainer.fit(module, datamodule=data, ckpt_path=str(point.path) if point is not None else None)
    trainer.save_checkpoint(str(last))  # last.ckpt is always the final state, whatever N divides
    seconds = time.time() - started
    if trainer.is_global_zero:
        curves = plot_curves(run_dir)
        summary: dict[str, Any] = {
            "method": cfg.method,
            "steps": int(trainer.global_step),
            "max_steps": int(t.max_steps),
            # the wall-clock cap ended the run before max_steps: said here, in the log and in the report
            "stopped_by_max_minutes": bool(t.max_minutes) and int(trainer.global_step) < int(t.max_steps),
            "seconds": round(seconds, 1),
            "tiles_train": int(len(train_pos)),
            "tiles_holdout": int(len(holdout_pos)),
            "mpp": index.mpp,
            "monitor_first": monitor.history[0] if monitor.history else {},
            "monitor_last": monitor.history[-1] if monitor.history else {},
            "curves": str(curves) if curves else None,
        }
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        first, lastm = summary["monitor_first"], summary["monitor_last"]
        changes = ", ".join(
            f"{k.split('/')[-1]} {first[k]:.3g}->{lastm[k]:.3g}" for k in lastm if k in first and k != "step"
        )
        log.info(
            "pretrain done: %s, %d steps in %.0f s; %s; run dir %s",
            cfg.method,
            trainer.global_step,
            seconds,
            changes,
            run_dir,
        )
        if summary["stopped_by_max_minutes"]:
            log.warning(
                "pretraining stopped at trainer.max_minutes=%g after %d of %d steps: the encoder is "
                "under-trained; rerun the same command with a larger --set trainer.max_minutes=... to "
                "continue from the last checkpoint",
                t.max_minutes,
                trainer.global_step,
                t.max_steps,
            )
    return run_dir
