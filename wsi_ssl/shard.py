"""Deterministic, disjoint shards of a list of work items for job arrays.

``--shard I/N`` (0-based I) picks items ``I, I+N, I+2N ...`` of the list sorted by key, so every
job of an array computes the same partition without talking to the others, and the union of all
shards is the whole list. The index can also come from the scheduler, so one job script serves
every task of an array:

- SLURM job arrays: ``SLURM_ARRAY_TASK_ID`` relative to ``SLURM_ARRAY_TASK_MIN`` (arrays often
  start at 1) and divided by ``SLURM_ARRAY_TASK_STEP`` (``--array=0-30:2``), out of
  ``SLURM_ARRAY_TASK_COUNT``; read with no ``--shard`` or with ``--shard auto``.
- Kubernetes Indexed Jobs: ``JOB_COMPLETION_INDEX``. Kubernetes does not export the number of
  completions, so the count is given: ``--shard auto/N`` with N = the Job's ``completions``.

A pod of an Indexed Job run without ``--shard`` is refused rather than given the whole list:
every pod would then write the same outputs at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

K8S_INDEX = "JOB_COMPLETION_INDEX"
SLURM_ID, SLURM_COUNT = "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"
SHARD_HELP = (
    "I/N: process only shard I of N (0-based); 'auto/N' takes I from a Kubernetes Indexed Job "
    "(JOB_COMPLETION_INDEX) or a SLURM array; default: the SLURM array variables when set, else everything"
)


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

    def owns(self, position: int) -> bool:
        """Whether item ``position`` (of an already ordered list, e.g. fold numbers) is this shard's."""
        return position % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ValueError(f"{name}={env[name]!r} is not an integer") from None


def _slurm(env: Mapping[str, str]) -> Shard | None:
    if SLURM_ID not in env or SLURM_COUNT not in env:
        return None
    first = _int(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
    step = _int(env, "SLURM_ARRAY_TASK_STEP") if "SLURM_ARRAY_TASK_STEP" in env else 1
    count = _int(env, SLURM_COUNT)
    offset = _int(env, SLURM_ID) - first
    if step < 1 or offset % step or not 0 <= offset // step < count:
        raise ValueError(
            f"SLURM array task {env[SLURM_ID]} is not one of {count} evenly spaced tasks "
            f"(min {env.get('SLURM_ARRAY_TASK_MIN', '0')}, step {step}); use --array=A-B[:S] or pass --shard I/N"
        )
    return Shard(offset // step, count)


def _auto(count: int | None, env: Mapping[str, str], text: str) -> Shard:
    """The index from the scheduler's variables: a Kubernetes Indexed Job's, else a SLURM array's."""
    if K8S_INDEX in env:
        if count is None:
            raise ValueError(
                f"--shard {text}: {K8S_INDEX} is set (a Kubernetes Indexed Job) but Kubernetes does not say how "
                "many completions there are; pass --shard auto/N with N = the Job's completions"
            )
        index = _int(env, K8S_INDEX)
        if not 0 <= index < count:
            raise ValueError(f"--shard {text}: {K8S_INDEX}={index} is outside 0..{count - 1}; N must be completions")
        return Shard(index, count)
    slurm = _slurm(env)
    if slurm is None:
        raise ValueError(
            f"--shard {text}: no job-array index to read ({K8S_INDEX}, or {SLURM_ID} with {SLURM_COUNT}); "
            "give the index as --shard I/N"
        )
    if count is not None and slurm.count != count:
        raise ValueError(f"--shard {text}: the SLURM array has {slurm.count} tasks, not {count}")
    return slurm


def parse_shard(text: str | None, environ: Mapping[str, str] | None = None) -> Shard:
    """``I/N`` as given; ``auto/N`` or ``auto`` from the scheduler; nothing: a SLURM array's, else 0/1.

    Raises ValueError with the reason (callers print it and exit 2).
    """
    env = os.environ if environ is None else environ
    if text:
        head, sep, tail = text.strip().partition("/")
        try:
            count = int(tail) if sep else None
            if head == "auto":
                return _auto(count, env, text)
            if count is None:
                raise ValueError("no /N")
            return Shard(int(head), count)
        except ValueError as exc:
            if str(exc).startswith("--shard"):
                raise
            raise ValueError(
                f"--shard {text!r}: expected I/N with 0 <= I < N (for example 0/4), auto/N or auto ({exc})"
            ) from None
    slurm = _slurm(env)
    if slurm is not None:
        return slurm
    if K8S_INDEX in env:
        raise ValueError(
            f"{K8S_INDEX} is set (a pod of a Kubernetes Indexed Job) but no --shard was given, so every pod "
            "would do the whole list; pass --shard auto/N with N = the Job's completions"
        )
    return Shard(0, 1)
