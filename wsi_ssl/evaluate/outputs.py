"""Merge the per-encoder results in ``OUT/runs/*/results.json`` into the run's deliverables:
``results.json`` (every figure with its spread and seed list), ``results.csv`` (one row per
encoder x dataset x protocol), ``robustness.csv`` (one row per encoder x shift), ``plots/*.png``
and a self-contained ``report.html`` with the encoders side by side. Rewritten from files after
every shard, so the outputs always show every encoder evaluated so far.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from wsi_ssl.evaluate.plots import confusion_plot, fewshot_plot, robustness_plot

METRICS = ("balanced_accuracy", "auroc", "macro_f1")


def load_runs(out: Path) -> list[dict[str, Any]]:
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/results.json"))]
    return sorted(runs, key=lambda r: r["encoder"]["name"])


def csv_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        for proto, entry in r["protocols"].items():
            row: dict[str, Any] = {"encoder": r["encoder"]["name"], "dataset": r["dataset"]["name"], "protocol": proto}
            for m in METRICS:
                row[f"{m}_mean"] = entry["metrics"][m]["mean"]
                row[f"{m}_std"] = entry["metrics"][m]["std"]
            row["n_seeds"] = len(r["seeds"])
            row["seeds"] = " ".join(map(str, r["seeds"]))
            rows.append(row)
    return rows


def robustness_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        rob = r.get("robustness") or {}
        for shift, entry in rob.get("shifts", {}).items():
            rows.append(
                {
                    "encoder": r["encoder"]["name"],
                    "dataset": r["dataset"]["name"],
                    "shift": shift,
                    "clean_mean": rob["clean"]["balanced_accuracy"]["mean"],
                    "shifted_mean": entry["metrics"]["balanced_accuracy"]["mean"],
                    "shifted_std": entry["metrics"]["balanced_accuracy"]["std"],
                    "drop_mean": entry["drop"]["balanced_accuracy"]["mean"],
                    "drop_std": entry["drop"]["balanced_accuracy"]["std"],
                }
            )
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def make_plots(runs: list[dict[str, Any]], plots: Path) -> dict[str, Path]:
    plots.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for r in runs:
        if r.get("confusion_matrix"):
            name = r["encoder"]["name"]
            made[f"confusion_{name}"] = confusion_plot(
                r["confusion_matrix"],
                r["dataset"]["classes"],
                f"{name}: linear probe, seed {r['seeds'][0]}",
                plots / f"confusion_{name}.png",
            )
    curves = {
        r["encoder"]["name"]: [
            (int(e["shots"]), e["metrics"]["balanced_accuracy"]["mean"], e["metrics"]["balanced_accuracy"]["std"])
            for e in r["protocols"].values()
            if "shots" in e
        ]
        for r in runs
    }
    curves = {k: v for k, v in curves.items() if v}
    if curves:
        made["fewshot"] = fewshot_plot(curves, plots / "fewshot.png")
    drops = {
        r["encoder"]["name"]: {
            s: (e["drop"]["balanced_accuracy"]["mean"], e["drop"]["balanced_accuracy"]["std"])
            for s, e in r["robustness"]["shifts"].items()
        }
        for r in runs
        if r.get("robustness", {}).get("shifts")
    }
    if drops:
        made["robustness"] = robustness_plot(drops, plots / "robustness.png")
    return made


def write_outputs(out: Path) -> dict[str, Any]:
    """(Re)write results.json, results.csv, robustness.csv, plots/ and report.html from ``OUT/runs``."""
    from wsi_ssl.evaluate.report import render_report

    runs = load_runs(out)
    merged = {"version": 1, "encoders": [r["encoder"]["name"] for r in runs], "results": runs}
    tmp = out / ".results.json.partial"
    tmp.write_text(json.dumps(merged, indent=2))
    tmp.replace(out / "results.json")
    _write_csv(out / "results.csv", csv_rows(runs))
    _write_csv(out / "robustness.csv", robustness_rows(runs))
    figures = make_plots(runs, out / "plots")
    (out / "report.html").write_text(render_report(runs, figures))
    return merged
