"""``OUT/manifest.csv``: one row per slide, the run's ledger (done / failed / skipped).

Rewritten atomically after every slide, merged with the rows of earlier runs, so an interrupted
run still leaves an accurate ledger and a rerun updates rows rather than appending duplicates.
Each job of a sharded array writes its own ``manifest.shard-I-of-N.csv``, avoiding write races.
Whatever reads a tiling run's ledger (the pipeline, the report, ``wsi-ssl tile --merge-manifests``)
reads it through :func:`read_merged_manifest`, which folds ``manifest.csv`` and every shard
manifest into one row per slide: the row from the most recently written file wins, so a rerun of
one shard (or of the whole list, unsharded) updates the slides it touched and nothing else.
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass, field
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


SHARD_MANIFEST = re.compile(r"manifest\.shard-(\d+)-of-(\d+)\.csv")


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:  # a Path, or a UPath for a run on object storage
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


@dataclass
class MergedManifest:
    """One row per slide from every manifest of a tiling output, and which shard manifests are absent."""

    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # the manifests read, oldest first
    missing: list[str] = field(default_factory=list)  # "I/N" of shards whose array wrote others but not these

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows.values():
            out[row.get("status", "")] = out.get(row.get("status", ""), 0) + 1
        return out


def manifest_files(out_dir: Path) -> list[Path]:
    """``manifest.csv`` and every ``manifest.shard-I-of-N.csv`` of ``out_dir``, oldest first."""
    out_dir = Path(out_dir)
    found = [p for p in out_dir.glob("manifest*.csv") if p.name == "manifest.csv" or SHARD_MANIFEST.fullmatch(p.name)]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def read_merged_manifest(out_dir: Path) -> MergedManifest:
    """The ledger of a tiling output, sharded or not (the single reader every stage uses)."""
    merged = MergedManifest(files=manifest_files(out_dir))
    arrays: dict[int, set[int]] = {}
    for path in merged.files:
        merged.rows.update(read_manifest(path))  # newer files overwrite older rows
        m = SHARD_MANIFEST.fullmatch(path.name)
        if m:
            arrays.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
    merged.missing = [f"{i}/{n}" for n, seen in sorted(arrays.items()) for i in range(n) if i not in seen]
    merged.rows = dict(sorted(merged.rows.items()))
    return merged


def merge_manifests(out_dir: Path) -> MergedManifest:
    """Write the merged ledger as ``out_dir/manifest.csv`` (atomically); the shard files stay."""
    merged = read_merged_manifest(out_dir)
    if not merged.files:
        raise FileNotFoundError(f"{out_dir}: no manifest.csv or manifest.shard-I-of-N.csv to merge")
    manifest = Manifest(Path(out_dir) / "manifest.csv")
    manifest.rows = merged.rows
    manifest.flush()
    return merged
