"""Per-slide feature files fed from a stream of batches that may end one slide and start the next.

Slides arrive in order, so one ``FeatureWriter`` is open at a time: the first rows of a new slide
close the previous slide's file (renamed into place, Contract 3). A failure (unreadable tiles, a
forward error, a full disk) aborts that slide's temporary file only and records why; the rows of
other slides keep flowing, so a run goes on past a bad slide.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import numpy as np

from wsi_ssl.embed.plan import SlideJob
from wsi_ssl.stores.encoder_dir import EncoderConfig
from wsi_ssl.stores.features import FeatureWriter
from wsi_ssl.stores.tile_store import TileStore, TileStoreError

log = logging.getLogger(__name__)


def slide_attrs(job: SlideJob, enc: EncoderConfig, precision: str) -> dict[str, Any]:
    """Contract 3 attrs, plus what it takes to tell later which run made the file and how."""
    return {
        "slide_id": job.slide_id,
        "encoder": enc.name or enc.arch,
        "encoder_arch": enc.arch,
        "encoder_sha256": enc.sha256,
        "encoder_mpp": enc.mpp if enc.mpp is not None else "",
        "encoder_preset": enc.preset,
        "encoder_revision": enc.revision,
        "encoder_pooling": enc.pooling or "",
        "input_size": enc.input_size,
        "mpp": job.mpp,
        "tile_size": job.tile_size,
        "n_tiles": job.n_tiles,
        "precision": precision,
        "tile_store": str(job.store),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class SlideWriters:
    """Routes rows to the right slide's file; ``failed`` (slide_id -> why) is shared with the caller."""

    def __init__(
        self, jobs: list[SlideJob], enc: EncoderConfig, precision: str, dtype: str, failed: dict[str, str]
    ) -> None:
        self.jobs, self.enc, self.precision, self.dtype, self.failed = jobs, enc, precision, dtype, failed
        self.current: int | None = None
        self.writer: FeatureWriter | None = None
        self.bad: set[int] = set()
        self.closed = 0  # slides whose file is complete and in place
        self.closed_tiles = 0  # their rows

    def fail(self, j: int, why: str) -> None:
        """Drop slide ``j``: abort its temporary file if open, ignore its later rows."""
        if j in self.bad:
            return
        if self.writer is not None and self.current == j:
            self.writer.abort()
            self.writer = None
        self.bad.add(j)
        self.failed[self.jobs[j].slide_id] = why
        log.error("slide %s failed: %s", self.jobs[j].slide_id, why)

    def write(self, j: int, start: int, feats: np.ndarray) -> bool:
        """Append rows ``start..`` of slide ``j``; False when the slide is (or just became) failed."""
        if j in self.bad:
            return False
        if self.current != j:
            self.finish()
            self.current = j
        try:
            if self.writer is None:
                job = self.jobs[j]
                self.writer = FeatureWriter(
                    job.out,
                    TileStore(job.store).coords,
                    feats.shape[1],
                    slide_attrs(job, self.enc, self.precision),
                    self.dtype,
                )
            self.writer.write(start, feats)
        except (OSError, ValueError, TileStoreError) as exc:
            self.fail(j, f"writing {self.jobs[j].out} failed: {exc}")
            return False
        return True

    def finish(self) -> None:
        """Close the current slide's file (renamed into place) if it is still good."""
        if self.writer is None or self.current is None:
            return
        j, writer = self.current, self.writer
        self.writer = None
        try:
            writer.close()
            self.closed += 1
            self.closed_tiles += writer.n_rows
        except (OSError, ValueError) as exc:
            self.fail(j, str(exc))

    def abort(self) -> None:
        """Drop the open temporary file (an interrupted run); finished slides stay in place."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
