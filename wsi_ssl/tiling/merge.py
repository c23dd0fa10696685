"""``wsi-ssl tile --merge-manifests OUT``: fold the shard manifests of a job array into ``manifest.csv``.

Run once after the array (a SLURM job with ``--dependency=afterany:<array>``, or the last step
of a Kubernetes workflow). It exits 1 when an array's shard manifest is missing (a task that has
not run, or is still running), after writing what there is, so a dependent step can tell.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wsi_ssl.tiling.manifest import merge_manifests


def run_merge(out_dir: Path) -> int:
    try:
        merged = merge_manifests(out_dir)
    except FileNotFoundError as exc:
        print(f"wsi-ssl tile --merge-manifests: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {status}" for status, n in sorted(merged.counts().items())) or "no slides"
    print(f"merged {len(merged.files)} manifest(s): {len(merged.rows)} slides ({counts}) -> {out_dir / 'manifest.csv'}")
    if merged.missing:
        print(
            f"wsi-ssl tile --merge-manifests: no manifest yet from shard(s) {', '.join(merged.missing)} "
            "(not run, or still running); rerun the merge when they have finished",
            file=sys.stderr,
        )
        return 1
    return 0
