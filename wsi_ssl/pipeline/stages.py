"""Each pipeline stage as a pair: a completeness check read from its output files, and a run.

"Complete" is decided from files the stages write last (a tile store's ``complete`` attr, a
pretraining run's ``summary.json``, an encoder's ``config.json``, an h5 renamed into place, a MIL
run's ``metrics.json``), so a stage killed half-way never looks complete and is rerun (and then
resumes by itself). A check returns ``(complete, why)``; ``why`` is shown to the user.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

from wsi_ssl.evaluate.pipeline_stage import check_evaluation, run_evaluation
from wsi_ssl.pipeline.call import call_stage
from wsi_ssl.pipeline.layout import PipelineError, Run

log = logging.getLogger(__name__)
Check = Callable[[Run], tuple[bool, str]]


def read_ids(table: Path) -> list[str]:
    with open(table, newline="") as fh:
        return [row["slide_id"] for row in csv.DictReader(fh) if row.get("slide_id")]


def check_cohort(p: Run) -> tuple[bool, str]:
    table = p.cohort_table()
    if not table.is_file():
        return False, f"no slide table at {table}"
    if p.cfg.cohort.demo is None:
        return True, f"user cohort, table {table}"
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [r["slide_id"] for r in rows if not slide_path(table, r.get("path", "")).is_file()]
    if len(rows) != p.cfg.cohort.demo.slides or missing:
        return False, f"{len(rows)} of {p.cfg.cohort.demo.slides} slides listed, {len(missing)} files missing"
    return True, f"{len(rows)} generated slides"


def slide_path(table: Path, value: str) -> Path:
    """A table's ``path`` cell: relative paths are relative to the table's folder (as the tiler reads them)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (table.parent / path).resolve()


def run_cohort(p: Run) -> None:
    d = p.cfg.cohort.demo
    if d is None:
        raise PipelineError(f"cohort.table {p.cohort_table()} does not exist")
    call_stage(
        [
            "demo-cohort",
            "--out",
            str(p.layout.cohort),
            "--slides",
            str(d.slides),
            "--seed",
            str(d.seed),
            "--width",
            str(d.width),
            "--height",
            str(d.height),
            "--mpp",
            str(d.mpp),
            "--slides-per-patient",
            str(d.slides_per_patient),
            "--workers",
            str(d.workers),
        ],
        "demo-cohort",
    )


def tiled_ids(p: Run) -> list[str]:
    from wsi_ssl.stores.tile_store import is_complete, store_path

    return [sid for sid in read_ids(p.cohort_table()) if is_complete(store_path(p.layout.tiles, sid))]


def check_tile(p: Run) -> tuple[bool, str]:
    wanted = read_ids(p.cohort_table())
    done = tiled_ids(p)
    return len(done) == len(wanted), f"{len(done)} of {len(wanted)} slides tiled"


def run_tile(p: Run) -> None:
    inputs = p.cfg.cohort.slides or [str(p.cohort_table())]
    # Exit 1 = some slides failed: the manifest says which; the others go on (checked below).
    call_stage(
        ["tile", *inputs, "--out", str(p.layout.tiles), *p.cfg.tile.argv(p.config_path(p.cfg.tile))],
        "wsi-ssl tile",
        ok_codes=(0, 1),
    )
    done, wanted = len(tiled_ids(p)), len(read_ids(p.cohort_table()))
    write_tiled_table(p)
    if done < p.cfg.min_slides:
        raise PipelineError(
            f"only {done} of {wanted} slides were tiled (min_slides {p.cfg.min_slides}); "
            f"see {p.layout.tiles / 'manifest.csv'}"
        )
    if done < wanted:
        log.warning(
            "%d of %d slides failed to tile and are left out (see %s)",
            wanted - done,
            wanted,
            p.layout.tiles / "manifest.csv",
        )


def check_tile_partial(p: Run) -> tuple[bool, str]:
    """Tiling counts as complete when every slide is done, or when it has run and only failures are left."""
    ok, why = check_tile(p)
    return ok or (p.layout.table.is_file() and _only_failures(p)), why


def _only_failures(p: Run) -> bool:
    from wsi_ssl.tiling.manifest import read_merged_manifest

    merged = read_merged_manifest(p.layout.tiles)  # manifest.csv and any shard manifests of a job array
    if not merged.files:
        return False
    status = {sid: r["status"] for sid, r in merged.rows.items()}
    done = set(tiled_ids(p))
    return all(status.get(sid) == "failed" for sid in read_ids(p.cohort_table()) if sid not in done)


def write_tiled_table(p: Run) -> None:
    """``RUN/slides.csv``: the cohort table restricted to tiled slides, the table MIL trains on."""
    done = set(tiled_ids(p))
    with open(p.cohort_table(), newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r.get("slide_id") in done]
        fields = list(reader.fieldnames or [])
    for r in rows:  # absolute, so MIL heatmaps find the slide from any working directory
        if r.get("path"):
            r["path"] = str(slide_path(p.cohort_table(), r["path"]))
    tmp = p.layout.table.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(p.layout.table)


def check_pretrain(p: Run) -> tuple[bool, str]:
    if p.cfg.pretrain.encoder:
        return True, f"using the existing encoder {p.cfg.pretrain.encoder}"
    summary = p.layout.pretrain / "summary.json"
    return summary.is_file(), ("finished" if summary.is_file() else "no summary.json yet")


def run_pretrain(p: Run) -> None:
    argv = [
        "pretrain",
        "--tiles",
        str(p.layout.tiles),
        "--out",
        str(p.layout.pretrain),
        *p.cfg.pretrain.argv(p.config_path(p.cfg.pretrain)),
    ]
    if (p.layout.pretrain / "checkpoints" / "last.ckpt").is_file():
        argv.append("--resume")  # an interrupted run: continue at its last checkpoint
    call_stage(argv, "wsi-ssl pretrain")


def _encoder_ready(p: Run, kind: str) -> bool:
    if kind == "pretrained" and p.layout.encoder_preset is not None:
        return True  # a preset: its weights are checked when embed loads them
    return (p.layout.encoder(kind) / "config.json").is_file()


def check_encoders(p: Run) -> tuple[bool, str]:
    have = [k for k in p.kinds if _encoder_ready(p, k)]
    return len(have) == len(p.kinds), f"encoders present: {', '.join(have) or 'none'}"


def run_encoders(p: Run) -> None:
    if not _encoder_ready(p, "pretrained"):
        call_stage(
            ["export", str(p.layout.pretrain), "--out", str(p.layout.encoder("pretrained")), "--name", "pretrained"],
            "wsi-ssl export",
        )
    if "random" in p.kinds and not _encoder_ready(p, "random"):
        write_random_encoder(p.layout.encoder_spec("pretrained"), p.layout.encoder("random"))


def write_random_encoder(pretrained: str | Path, out: Path, seed: int = 0) -> None:
    """The baseline: the pretrained encoder's (or preset's) architecture, kwargs, preprocessing and
    pooling, with random weights."""
    import torch

    from wsi_ssl.encoders.builders import backbone_from_config
    from wsi_ssl.encoders.load import peek_config
    from wsi_ssl.stores.encoder_dir import save_encoder

    config = peek_config(pretrained)
    if config is None:
        raise ValueError(f"{pretrained}: not an encoder dir or preset")
    torch.manual_seed(seed)
    model = backbone_from_config(config)
    random_config = config.model_copy(
        update={
            "method": "random",
            "steps": 0,
            "name": "random",
            "sha256": "",
            "preset": "",
            "revision": "",
            "init_from": "",
        }
    )
    save_encoder(model.eval(), out, random_config)


def check_embed(p: Run) -> tuple[bool, str]:
    ids = tiled_ids(p)
    counts = {k: sum((p.layout.features(k) / f"{sid}.h5").is_file() for sid in ids) for k in p.kinds}
    return all(n == len(ids) for n in counts.values()), ", ".join(
        f"{k} {n}/{len(ids)} slides" for k, n in counts.items()
    )


def run_embed(p: Run) -> None:
    for kind in p.kinds:
        call_stage(
            [
                "embed",
                "--tiles",
                str(p.layout.tiles),
                "--encoder",
                p.layout.encoder_spec(kind),
                "--out",
                str(p.layout.features(kind)),
                *p.cfg.embed.argv(p.config_path(p.cfg.embed)),
            ],
            f"wsi-ssl embed ({kind} encoder)",
        )


def check_mil(p: Run) -> tuple[bool, str]:
    runs = [(k, t) for k in p.kinds for t in p.cfg.mil]
    done = [f"{k}/{t}" for k, t in runs if (p.layout.mil(k, t) / "metrics.json").is_file()]
    return len(done) == len(runs), f"{len(done)} of {len(runs)} MIL runs finished"


def run_mil(p: Run) -> None:
    for kind in p.kinds:
        for task, stage in p.cfg.mil.items():
            if (p.layout.mil(kind, task) / "metrics.json").is_file():
                continue
            argv = [
                "mil",
                "train",
                "--features",
                str(p.layout.features(kind)),
                "--slides",
                str(p.layout.table),
                "--out",
                str(p.layout.mil(kind, task)),
                *stage.argv(p.config_path(stage)),
            ]
            if kind == "random":
                argv += ["--set", "eval.heatmaps=0"]  # the baseline's attention is not worth drawing
            call_stage(argv, f"wsi-ssl mil train ({task}, {kind} encoder)")


CHECKS: dict[str, Check] = {
    "cohort": check_cohort,
    "tile": check_tile_partial,
    "pretrain": check_pretrain,
    "encoders": check_encoders,
    "embed": check_embed,
    "mil": check_mil,
    "evaluate": check_evaluation,  # wsi_ssl/evaluate/pipeline_stage.py: only when `evaluation:` is set
}
RUNS: dict[str, Callable[[Run], None]] = {
    "cohort": run_cohort,
    "tile": run_tile,
    "pretrain": run_pretrain,
    "encoders": run_encoders,
    "embed": run_embed,
    "mil": run_mil,
    "evaluate": run_evaluation,
}
