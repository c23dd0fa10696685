"""The report's "Does the slide add to clinical data?" section, from each MIL run's ``comparison``.

For every task and encoder whose ``metrics.json`` holds a ``comparison`` (``wsi-ssl mil train``
with ``data.covariates`` / ``data.omics``): the covariates-only, histology-only and fused models'
out-of-fold headline metric side by side, the paired-bootstrap gains of the fused model over
each, and which covariates matter (permutation importance). Built from files only, as every
section.
"""

from __future__ import annotations

import json
from typing import Any

from wsi_ssl.pipeline.layout import Run
from wsi_ssl.pipeline.report.render import Raw, Section, ci, esc, fmt, table

SECTION_ID = "clinical"
MODELS = (
    ("covariates_only", "covariates only"),
    ("histology_only", "histology only"),
    ("fused", "fused"),
    ("pooled_linear", "pooled linear (tiles)"),
)


def _verdict(gain: dict[str, Any] | None) -> Raw:
    if not gain:
        return Raw("")
    lo, hi = gain.get("ci_low", float("nan")), gain.get("ci_high", float("nan"))
    if lo == lo and lo > 0:
        return Raw('<span class="good">fused better (CI above 0)</span>')
    if hi == hi and hi < 0:
        return Raw('<span class="bad">fused worse (CI below 0)</span>')
    return Raw("not resolved (CI spans 0)")


def _gain(g: dict[str, Any] | None) -> Raw:
    if not g:
        return Raw("")
    return Raw(f"{g['value']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]")


def clinical_section(p: Run) -> Section:
    body = (
        '<p class="note">Same folds for every model. Covariates only: scikit-learn / scikit-survival on the '
        "clinical covariates and omics (training-fold standardisation, missing values as indicators). "
        "Histology only: the MIL model without covariates. Fused: the MIL model with them "
        "(<code>model.fusion</code>). Gains are paired bootstraps of the fused model's score minus the other's.</p>"
    )
    found = 0
    for task in p.cfg.mil:
        for kind in p.kinds:
            path = p.layout.mil(kind, task) / "metrics.json"
            comp = json.loads(path.read_text()).get("comparison") if path.is_file() else None
            if not comp or "covariates_only" not in comp:
                continue
            found += 1
            key = comp.get("metric", "")
            body += f"<h3>{esc(task)}, {esc(kind)} encoder: {esc(comp.get('label', key))}, out of fold</h3>"
            rows = [(label, ci(comp[name].get(key))) for name, label in MODELS if name in comp]
            body += table(["model", "value [95% CI]"], rows)
            gains = [
                (label, _gain(comp.get(name)), _verdict(comp.get(name)))
                for name, label in (
                    ("gain_vs_covariates", "fused - covariates only"),
                    ("gain_vs_histology", "fused - histology only"),
                )
                if comp.get(name)
            ]
            if gains:
                score = next(iter(comp[n] for n in ("gain_vs_covariates", "gain_vs_histology") if n in comp)).get(
                    "score", ""
                )
                body += table([f"gain ({esc(score)})", "value [95% CI]", "verdict"], gains)
            imp = comp.get("importance")
            if imp and imp.get("mean"):
                body += table(
                    ["input", f"permutation importance (drop in {esc(imp.get('score', ''))}, mean over folds)"],
                    [(name, fmt(v)) for name, v in imp["mean"].items()],
                )
    if not found:
        body += "<p>No MIL run of this pipeline was given clinical covariates or omics (<code>data.covariates</code>, <code>data.omics</code>).</p>"
    return Section(SECTION_ID, "Does the slide add to clinical data?", body)
