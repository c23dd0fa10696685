"""The report's sections, each built from the files one stage wrote (never from in-memory state),
so the report of a resumed run is the same as that of an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from wsi_ssl.pipeline.layout import Run
from wsi_ssl.pipeline.report.baseline import pooled_linear_table
from wsi_ssl.pipeline.report.figures import comparison_chart, data_uri, per_fold_ci, thumbnail_uri, tiles_histogram
from wsi_ssl.pipeline.report.render import Raw, Section, ci, esc, figure, fmt, table

KIND_TEXT = {"pretrained": "pretrained encoder", "random": "randomly initialised encoder (same architecture)"}


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def cohort_section(p: Run) -> Section:
    rows = _read_csv(p.layout.table)
    from wsi_ssl.tiling.manifest import read_merged_manifest

    manifest = read_merged_manifest(p.layout.tiles).rows  # manifest.csv merged with any shard manifests
    cohort_ids = [r["slide_id"] for r in _read_csv(p.cohort_table())]
    n_tiles = [int(manifest[r["slide_id"]].get("n_tiles") or 0) for r in rows if r["slide_id"] in manifest]
    facts: list[tuple[str, object]] = [
        ("slides in the cohort table", len(cohort_ids)),
        ("slides tiled", len(rows)),
        ("patients", len({r.get("patient_id") for r in rows})),
    ]
    if rows and "biomarker" in rows[0]:
        facts.append(("biomarker-positive slides", sum(r["biomarker"] in ("1", "True", "true") for r in rows)))
    if rows and "event" in rows[0]:
        facts.append(
            (
                "events (deaths) / censored",
                f"{sum(r['event'] == '1' for r in rows)} / {sum(r['event'] == '0' for r in rows)}",
            )
        )
    if n_tiles:
        facts += [
            ("tiles in total", sum(n_tiles)),
            (
                "tiles per slide (min / median / max)",
                f"{min(n_tiles)} / {sorted(n_tiles)[len(n_tiles) // 2]} / {max(n_tiles)}",
            ),
        ]
    failed = [(sid, r.get("error", "")) for sid, r in manifest.items() if r.get("status") == "failed"]
    body = table(["", "value"], facts)
    if p.cfg.cohort.demo is not None:
        body += '<p class="note">A generated demo cohort: its biomarker and survival were planted in the tumour content.</p>'
    if n_tiles:
        body += figure(tiles_histogram(n_tiles), "tiles per slide", 460)
    if failed:
        body += "<h3>Slides that failed to tile</h3>" + table(["slide", "error"], failed)
    thumbs = []
    for r in rows[: p.cfg.report.thumbnails]:
        qc = p.layout.tiles / "qc" / f"{r['slide_id']}.png"
        n = manifest.get(r["slide_id"], {}).get("n_tiles", "?")
        thumbs.append(
            figure(
                thumbnail_uri(qc, p.cfg.report.thumbnail_px), f"{r['slide_id']}: {n} tiles", p.cfg.report.thumbnail_px
            )
        )
    body += f"<h3>QC thumbnails ({len(thumbs)} of {len(rows)} slides): tissue outline, pen ink and kept tiles</h3>"
    body += '<div class="grid">' + "".join(thumbs) + "</div>"
    return Section("cohort", "Cohort", body)


def pretraining_section(p: Run) -> Section:
    if p.cfg.pretrain.encoder:
        from wsi_ssl.encoders.load import peek_config

        config = peek_config(p.layout.encoder_spec("pretrained"))
        enc = config.model_dump() if config is not None else {}
        what = f"preset from {enc.get('source')}" if enc.get("preset") else f"method {enc.get('method', '?')}"
        body = (
            f"<p>No pretraining in this run: the existing encoder <code>{esc(p.cfg.pretrain.encoder)}</code> "
            f"({esc(enc.get('arch', '?'))}, {esc(what)}) was used.</p>"
        )
        return Section("pretraining", "Pretraining", body)
    summary = _json(p.layout.pretrain / "summary.json")
    first, last = summary.get("monitor_first", {}), summary.get("monitor_last", {})
    enc = _json(p.layout.encoder("pretrained") / "config.json")
    facts = [
        ("method", summary.get("method")),
        ("architecture", enc.get("arch")),
        ("embedding dim", enc.get("embed_dim")),
        ("input size (px) / tile MPP", f"{enc.get('input_size')} / {enc.get('mpp')}"),
        (
            "steps",
            f"{summary.get('steps')} of {summary.get('max_steps')}: stopped by trainer.max_minutes (under-trained)"
            if summary.get("stopped_by_max_minutes")
            else summary.get("steps"),
        ),
        ("minutes", round(float(summary.get("seconds", 0)) / 60, 1)),
        ("training / held-out tiles", f"{summary.get('tiles_train')} / {summary.get('tiles_holdout')}"),
    ]
    body = table(["", "value"], facts)
    monitored = sorted(k for k in last if k.startswith("monitor/") and k in first)
    if monitored:
        body += "<h3>Label-free and kNN monitors: at initialisation (random weights, step 0) vs the end</h3>"
        body += table(
            [
                "monitor",
                f"random init (step {int(first.get('step', 0))})",
                f"trained (step {int(last.get('step', 0))})",
            ],
            [(k.split("/", 1)[1], first[k], last[k]) for k in monitored],
        )
        body += (
            '<p class="note">rankme: effective rank of held-out tile embeddings (higher = less collapsed); '
            "knn_cohort: kNN accuracy on the generated cohort's known tissue classes of held-out tiles.</p>"
        )
    body += figure(
        data_uri(p.layout.pretrain / "curves.png"), "loss, learning rate, momentum, RankMe and kNN against step"
    )
    return Section("pretraining", "Pretraining", body)


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[object, ...]]:
    return [(name, ci(m)) for name, m in metrics.get("oof", {}).items()]


def models_section(p: Run) -> Section:
    body = (
        '<p class="note">K-fold cross-validation split by patient; every figure is out-of-fold (each slide scored '
        "by the model that did not see it). 95% bootstrap confidence intervals.</p>"
    )
    for task in p.cfg.mil:
        body += f'<h3>Task: {esc(task)}</h3><div class="side">'
        for kind in p.kinds:
            run = p.layout.mil(kind, task)
            metrics, outputs = _json(run / "metrics.json"), _json(run / "outputs.json")
            kind_task = metrics.get("task", "")
            col = f"<div><h4>{esc(KIND_TEXT.get(kind, kind))}</h4>"
            col += f"<p>{metrics.get('n_bags', '?')} patients, {metrics.get('folds', '?')} folds</p>"
            col += table(["metric (overall)", "value [95% CI]"], _metric_rows(metrics))
            col += pooled_linear_table(metrics)  # the mean+max pooled linear model on the same folds
            folds = (
                per_fold_ci(run / "oof_predictions.csv", kind_task, p.cfg.report.fold_bootstrap)
                if (run / "oof_predictions.csv").is_file()
                else []
            )
            label = fold_metric_label(kind_task)
            col += table(["fold", "n", f"{label} [95% CI]"], [(f["fold"], f["n"], ci(f)) for f in folds])
            plots = outputs.get("plots", {})
            if "roc" in plots:
                col += figure(data_uri(plots["roc"]), f"ROC, {kind} encoder")
            if "km" in plots:
                col += figure(
                    data_uri(plots["km"]),
                    f"Kaplan-Meier by predicted risk group (median split), {kind} encoder; "
                    f"log-rank p = {fmt(plots.get('logrank_p'), 4)}",
                )
            if "scatter" in plots:
                col += figure(data_uri(plots["scatter"]), f"predicted vs true, {kind} encoder")
            body += col + "</div>"
        body += "</div>"
    return Section("slide-models", "Slide-level models", body)


def heatmaps_section(p: Run) -> Section:
    body = (
        '<p class="note">Attention of the pretrained encoder\'s MIL model over each slide (the most confident '
        "out-of-fold predictions first), with the slide's top-attended tiles below.</p>"
    )
    shown = 0
    for task in p.cfg.mil:
        folder = p.layout.mil("pretrained", task) / "heatmaps"
        maps = sorted(f for f in folder.glob("*.png") if not f.stem.endswith("_top_tiles")) if folder.is_dir() else []
        if not maps:
            continue
        body += f'<h3>{esc(task)}</h3><div class="grid">'
        for png in maps[: p.cfg.report.heatmaps]:
            body += '<div style="width:420px">' + figure(data_uri(png), f"{png.stem}: attention heatmap")
            body += (
                figure(data_uri(png.with_name(png.stem + "_top_tiles.png")), f"{png.stem}: top tiles by attention")
                + "</div>"
            )
            shown += 1
        body += "</div>"
    if not shown:
        body += "<p>No heatmaps: the MIL configs use mean pooling or eval.heatmaps: 0.</p>"
    return Section("heatmaps", "Attention heatmaps", body)


def comparison_section(p: Run, rows: list[dict[str, Any]], stages: list[Any] | None = None) -> Section:
    header = ["task", "metric"] + [KIND_TEXT.get(k, k) for k in p.kinds]
    cells = []
    for r in rows:
        line: list[object] = [r["task"], r.get("label", "")] + [ci(r.get(k)) for k in p.kinds]
        if "random" in p.kinds and r.get("pretrained") and r.get("random"):
            diff = r["pretrained"]["value"] - r["random"]["value"]
            verdict = (
                ("good", "pretrained better")
                if diff >= 5e-4
                else ("bad", "pretrained worse")
                if diff <= -5e-4
                else ("", "tie")
            )
            line.append(Raw(f'<span class="{verdict[0]}">{verdict[1]}</span>'))
        cells.append(line)
    body = table(header + (["verdict"] if "random" in p.kinds else []), cells)
    body += figure(comparison_chart(rows, p.kinds), "headline out-of-fold metric per task and encoder, 95% CI")
    body += '<p class="note">Same tiles, same architecture, same MIL configs and folds; only the encoder weights differ.</p>'
    if stages:
        body += "<h3>This run</h3>" + table(
            ["stage", "status", "seconds (when it ran)", "outputs"],
            [(s.name, s.status, round(s.seconds), s.note) for s in stages],
        )
    return Section("comparison", "Pretrained vs random encoder", body)


def fold_metric_label(task_kind: str) -> str:
    from wsi_ssl.mil.tasks.registry import get_task, task_kinds

    return get_task(task_kind).fold_metric_label if task_kind in task_kinds() else "metric"


# Sections that live in modules of their own, shown after the built-in ones in this order
# (each is ``(Run) -> Section`` and always returns its section, saying so when it has nothing).
def extra_sections() -> list[Any]:
    from wsi_ssl.pipeline.report.clinical import clinical_section  # "does the slide add to clinical data?"
    from wsi_ssl.pipeline.report.evaluation import evaluation_section  # patch-level evaluation (evaluate)

    return [clinical_section, evaluation_section]
