"""``OUT/manifest.csv``: one row per slide, the run's ledger (done / failed / skipped).

Rewritten atomically after every slide, merged with the rows of earlier runs, so an interrupted
run still leaves an accurate ledger and a rerun updates rows rather than appending duplicates.
Each job of a sharded array writes its own ``manifest.shard-I-of-N.csv``, avoiding write races.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from wsi_ssl.shard import Shard
from wsi_ssl.stores.atomic import atomic_output

COLUMNS = ("slide_id", "path", "status", "n_tiles", "mpp", "seconds", "error")


@dataclass
class ManifestRow:
    slide_id: str
    path: str
    status: str  # done | failed | skipped
    n_tiles: int = 0
    mpp: float | None = None
    seconds: float = 0.0
    error: str = ""


def manifest_path(out_dir: Path, shard: Shard) -> Path:
    if shard.count == 1:
        return out_dir / "manifest.csv"
    return out_dir / f"manifest.shard-{shard.index}-of-{shard.count}.csv"


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["slide_id"]: row for row in csv.DictReader(f) if row.get("slide_id")}


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, str]] = read_manifest(path)

    def record(self, row: ManifestRow, flush: bool = True) -> None:
        """Update a slide's row; ``flush=False`` batches rows (e.g. thousands of skipped slides)."""
        d = asdict(row)
        d["seconds"] = f"{row.seconds:.2f}"
        d["mpp"] = "" if row.mpp is None else f"{row.mpp:g}"
        d["error"] = " ".join(row.error.split())  # one line per slide
        self.rows[row.slide_id] = {k: str(v) for k, v in d.items()}
        if flush:
            self.flush()

    def flush(self) -> None:
        with atomic_output(self.path) as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
                w.writeheader()
                for sid in sorted(self.rows):
                    w.writerow(self.rows[sid])
