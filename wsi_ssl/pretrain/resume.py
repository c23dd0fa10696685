"""Rerunning ``wsi-ssl pretrain`` with the same ``--out`` continues the run, as every stage does.

- No checkpoint in ``RUN_DIR/checkpoints``: a new run starts (``--resume`` then is an error: it
  means "this must continue a run", and there is none).
- ``last.ckpt`` at ``trainer.max_steps`` or beyond, with ``summary.json`` written: the run is
  finished; the rerun says so and trains nothing (raise ``trainer.max_steps`` to train on).
- Otherwise training continues from ``last.ckpt``: weights, optimiser, step and every schedule.
- Under SLURM, Lightning saves ``hpc_ckpt_N.ckpt`` in ``RUN_DIR/checkpoints`` when the job's time
  limit signal arrives (``#SBATCH --signal=USR1@S``) and requeues the job; the requeued run
  continues from whichever of it and ``last.ckpt`` is further along.

**Which config wins.** The config given now. Keys that only steer the run (when it stops, how
often it checkpoints, logs and monitors, on which hardware, how many loader workers, where the
tiles are) may change freely; raising ``trainer.max_steps`` is how a run is extended (a cosine
schedule then stretches to the new end from the current step on; ``optim.schedule: infinite``
extends without that). Any other key that differs from the checkpoint's config (the learning
rate after a divergence, say) is named in a warning with both values, and the new value is
used from the resumed step on. A change the checkpoint cannot take, because the networks differ
(``method``, ``backbone``, head sizes, ...), is refused with the keys that differ.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsi_ssl.pretrain.config import PretrainConfig

log = logging.getLogger(__name__)

# Keys that steer the run, not what it learns: they may differ on resume without a warning.
RUN_CONTROL_KEYS = (
    "trainer.max_steps",
    "trainer.max_minutes",
    "trainer.ckpt_every",
    "trainer.val_every",
    "trainer.log_every",
    "trainer.threads",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.accelerator",
    "trainer.strategy",
    "trainer.precision",
    "trainer.compile",
    "data.num_workers",
    "data.tiles",
    "monitor.",
)


class RunDirError(ValueError):
    """A run directory that cannot be started or resumed as asked."""


@dataclass
class ResumePoint:
    """The checkpoint a rerun continues from: its path, step and the config it was trained with."""

    path: Path
    step: int
    config: dict[str, Any]
    state_shapes: dict[str, tuple[int, ...]]


HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"  # Lightning's SLURM auto-requeue checkpoints (default_root_dir)


def find_resume_point(ckpt_dir: Path, last: Path, must_resume: bool) -> ResumePoint | None:
    """The checkpoint to continue from, or None for a new run (see the module docstring)."""
    hpc = sorted(ckpt_dir.glob(HPC_CHECKPOINTS)) if ckpt_dir.is_dir() else []
    points = [read_resume_point(p) for p in ([last] if last.is_file() else []) + hpc]
    if points:  # the furthest along; on a tie last.ckpt (written after the signal's checkpoint)
        return max(points, key=lambda p: p.step)
    if must_resume:
        raise RunDirError(f"--resume: no checkpoint at {last}; start the run without --resume")
    others = sorted(ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []
    if others:
        raise RunDirError(
            f"{ckpt_dir} has checkpoints ({others[-1].name}) but no {last.name}; copy the one to "
            f"continue from to {last} or choose another --out"
        )
    return None


def read_resume_point(path: Path) -> ResumePoint:
    """Step, config and tensor shapes of a checkpoint, memory-mapped (no weights are read)."""
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False, mmap=True)
        config = dict(ckpt["hyper_parameters"]["config"])
        shapes = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
        step = int(ckpt.get("global_step", 0))
    except (RuntimeError, KeyError, TypeError, EOFError) as exc:
        raise RunDirError(
            f"{path}: not a readable wsi-ssl pretrain checkpoint ({exc}); move it away or choose another --out"
        ) from None
    return ResumePoint(path, step, config, shapes)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(old: dict[str, Any], new: PretrainConfig) -> dict[str, tuple[Any, Any]]:
    """``key -> (checkpoint value, new value)`` for every config key that differs.

    The checkpoint's config is validated again first, so keys added since it was written compare
    at their defaults rather than showing up as changes.
    """
    try:
        old_flat = _flatten(PretrainConfig.model_validate(old).model_dump(mode="json"))
    except ValueError:
        old_flat = _flatten(old)
    new_flat = _flatten(new.model_dump(mode="json"))
    return {
        k: (old_flat.get(k), new_flat.get(k))
        for k in sorted(set(old_flat) | set(new_flat))
        if old_flat.get(k) != new_flat.get(k)
    }


def is_run_control(key: str) -> bool:
    return any(key == c or (c.endswith(".") and key.startswith(c)) for c in RUN_CONTROL_KEYS)


def _describe(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())


def announce(point: ResumePoint, cfg: PretrainConfig, run_dir: Path) -> dict[str, tuple[Any, Any]]:
    """Say that the run resumes; returns the config changes (said by :func:`announce_changes`)."""
    log.info("resuming %s at step %d of %d (%s)", run_dir, point.step, cfg.trainer.max_steps, point.path.name)
    return config_changes(point.config, cfg)


def announce_changes(point: ResumePoint, changes: dict[str, tuple[Any, Any]]) -> None:
    """Name the keys that differ from the checkpoint's config: run settings at info, the rest as a warning."""
    steering = {k: v for k, v in changes.items() if is_run_control(k)}
    learnt = {k: v for k, v in changes.items() if not is_run_control(k)}
    if steering:
        log.info("resumed with new run settings: %s", _describe(steering))
    if learnt:
        log.warning(
            "the config differs from the checkpoint's; the new values apply from step %d on: %s",
            point.step,
            _describe(learnt),
        )


def check_fits(point: ResumePoint, shapes: dict[str, tuple[int, ...]], changes: dict[str, tuple[Any, Any]]) -> None:
    """Refuse, naming the changed keys, when the new config builds networks the checkpoint cannot fill."""
    if shapes == point.state_shapes:
        return
    missing = sorted(set(shapes) - set(point.state_shapes))
    extra = sorted(set(point.state_shapes) - set(shapes))
    resized = sorted(k for k in set(shapes) & set(point.state_shapes) if shapes[k] != point.state_shapes[k])
    detail = "; ".join(
        f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for what, keys in (
            ("not in the checkpoint", missing),
            ("only in the checkpoint", extra),
            ("other shapes", resized),
        )
        if keys
    )
    culprits = {k: v for k, v in changes.items() if not is_run_control(k)}
    raise RunDirError(
        f"{point.path}: the config builds other networks than the checkpoint holds ({detail}); "
        f"changed keys: {_describe(culprits) or 'none'}. Restore them or choose another --out"
    )
