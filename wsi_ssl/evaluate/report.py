"""``report.html`` of an evaluation: the encoders side by side, self-contained (images inlined).

Built with the pipeline report's building blocks (``wsi_ssl.pipeline.report.render``), so both
reports look and check themselves the same way; ``section_body`` is also what the pipeline's own
report shows when a pipeline names an evaluation dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsi_ssl.pipeline.report.figures import data_uri
from wsi_ssl.pipeline.report.render import Raw, Section, figure, fmt, page, table


def pm(entry: dict[str, float] | None, digits: int = 3) -> Raw:
    """``0.912 &plusmn; 0.004`` from a ``{"mean", "std"}`` entry."""
    if not entry:
        return Raw("&ndash;")
    return Raw(f"{fmt(entry['mean'], digits)} &plusmn; {fmt(entry['std'], digits)}")


def protocol_table(runs: list[dict[str, Any]], metric: str = "balanced_accuracy") -> str:
    protos: list[str] = []
    for r in runs:
        protos += [p for p in r["protocols"] if p not in protos]
    rows = [[p, *(pm(r["protocols"].get(p, {}).get("metrics", {}).get(metric)) for r in runs)] for p in protos]
    return table(["protocol", *(r["encoder"]["name"] for r in runs)], rows)


def robustness_table(runs: list[dict[str, Any]]) -> str:
    shifts: list[str] = []
    for r in runs:
        shifts += [s for s in (r.get("robustness") or {}).get("shifts", {}) if s not in shifts]
    if not shifts:
        return ""
    rows = [["clean", *(pm((r.get("robustness") or {}).get("clean", {}).get("balanced_accuracy")) for r in runs)]]
    for s in shifts:
        cells = []
        for r in runs:
            e = (r.get("robustness") or {}).get("shifts", {}).get(s)
            cells.append(
                Raw(f"{pm(e['metrics']['balanced_accuracy'])} (drop {pm(e['drop']['balanced_accuracy'])})")
                if e
                else Raw("&ndash;")
            )
        rows.append([s, *cells])
    return table(["linear probe under", *(r["encoder"]["name"] for r in runs)], rows)


def section_body(runs: list[dict[str, Any]], figures: dict[str, Path]) -> str:
    if not runs:
        return '<p class="note">No encoder evaluated yet.</p>'
    ds = runs[0]["dataset"]
    seeds = ", ".join(map(str, runs[0]["seeds"]))
    body = (
        f"<p>Dataset <b>{ds['name']}</b> at {ds['mpp']} &micro;m/px, {len(ds['classes'])} classes; patches evaluated: "
        f"{', '.join(f'{k} {v}' for k, v in ds.get('evaluated', ds['patches']).items())}. "
        f"Every figure is mean &plusmn; std over seeds {seeds}.</p>"
    )
    for note in ds.get("notes", []):
        body += f'<p class="note">{note}</p>'
    body += "<h3>Balanced accuracy on the test split</h3>" + protocol_table(runs)
    body += "<h3>AUROC</h3>" + protocol_table(runs, "auroc")
    body += "<h3>Macro-F1</h3>" + protocol_table(runs, "macro_f1")
    rob = robustness_table(runs)
    if rob:
        body += "<h3>Robustness: the trained linear probes on shifted test patches</h3>" + rob
    idx = [
        (r["encoder"]["name"], fmt((r.get("robustness_index") or {}).get("value")))
        for r in runs
        if r.get("robustness_index")
    ]
    if idx:
        body += "<h3>Robustness index (share of nearest neighbours sharing the class rather than the site)</h3>"
        body += table(["encoder", "robustness index"], idx)
    figs = [figure(data_uri(figures[k]), k.replace("_", " "), 460) for k in ("fewshot", "robustness") if k in figures]
    figs += [figure(data_uri(p), k.replace("_", " "), 360) for k, p in figures.items() if k.startswith("confusion_")]
    body += '<div class="grid">' + "".join(figs) + "</div>"
    return body


def render_report(runs: list[dict[str, Any]], figures: dict[str, Path]) -> str:
    names = ", ".join(r["encoder"]["name"] for r in runs) or "no encoder"
    sections = [Section("evaluation", "Patch-level evaluation", section_body(runs, figures))]
    return page(
        "wsi-ssl evaluate", f"{names} on {runs[0]['dataset']['name'] if runs else '?'}", sections, "wsi-ssl evaluate"
    )
