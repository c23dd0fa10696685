"""A quiet console for the stages that run on Lightning (``pretrain``: Trainer; ``embed``: Fabric).

Lightning prints, on every run, lines that say nothing about this run: product tips, which
accelerators exist, a Tensor Core hint, a resume notice for every checkpoint. Torch and Lightning
versions also disagree on deprecations that users cannot act on. :func:`quiet_lightning` drops
exactly those (by message, from the loggers or warning categories that emit them) while a stage
runs, and restores everything afterwards; any other log line or warning still shows, as do the
progress bars and the stages' own summary lines.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

# Info lines, by prefix, and the loggers they come from (Lightning's rank-zero loggers and two
# modules that log directly).
NOISE_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.checkpoint_connector",
    "lightning.pytorch.accelerators.cuda",
)
NOISE_PREFIXES = (
    "💡 Tip:",  # litlogger / litmodels advertisements
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "LOCAL_RANK:",  # CUDA_VISIBLE_DEVICES of each rank
    "You are using a CUDA device",  # the float32 matmul precision hint (our precision is configured)
    "Using bfloat16 Automatic Mixed Precision",
    "Using 16bit Automatic Mixed Precision",
    "`Trainer.fit` stopped:",  # the stage's own summary line follows
    "`weights_only` was not set",
    "Restoring states from the checkpoint path",  # the stage says "resuming ... at step N" itself
    "Restored all states from the checkpoint",
)

# Warnings, by message regex and category. Each is expected and harmless here:
NOISE_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # torch >= 2.9 deprecates LeafSpec, which Lightning's pytree helper still builds.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    # A rerun resumes into its own checkpoint folder on purpose.
    (r"Checkpoint directory .* exists and is not empty", UserWarning),
    # Resuming mid-epoch restarts that epoch's shuffled order (a new permutation per epoch, every
    # tile equally likely); the schedules are functions of the step and continue exactly.
    (r"You're resuming from a checkpoint that ended before the epoch ended", UserWarning),
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(NOISE_PREFIXES)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """While inside: Lightning's boilerplate lines and the known harmless warnings are dropped."""
    drop = _DropNoise()
    loggers = [logging.getLogger(name) for name in NOISE_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for message, category in NOISE_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)
