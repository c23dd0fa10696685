"""Deterministic, disjoint shards of a list of work items for job arrays.

``--shard I/N`` (0-based I) or SLURM's array variables pick items ``I, I+N, I+2N ...`` of the
list sorted by key, so every job of an array computes the same partition without talking to
the others, and the union of all shards is the whole list.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= I < N")

    def select(self, items: Sequence[T], key: Callable[[T], str]) -> list[T]:
        ordered = sorted(items, key=key)
        return ordered[self.index :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None, environ: dict[str, str] | None = None) -> Shard:
    """Parse ``I/N``; with no text, read SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT; else 0/1.

    SLURM array ids may start at SLURM_ARRAY_TASK_MIN (often 1), so the index is taken relative to it.
    """
    env = os.environ if environ is None else environ
    if text:
        try:
            i_txt, n_txt = text.split("/")
            return Shard(int(i_txt), int(n_txt))
        except ValueError as exc:
            raise ValueError(f"--shard {text!r}: expected I/N with 0 <= I < N, for example 0/4 ({exc})") from None
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        return Shard(task, int(env["SLURM_ARRAY_TASK_COUNT"]))
    return Shard(0, 1)
