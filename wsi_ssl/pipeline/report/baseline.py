"""The pooled linear baseline beside each MIL model in the report (``comparison.pooled_linear``).

Read from the run's ``metrics.json`` like every other figure of the report: the model's headline
out-of-fold metric, the mean+max pooled linear model's on the same folds, and the paired
bootstrap of their difference, so a reader sees at once whether attention earned its keep.
"""

from __future__ import annotations

from typing import Any

from wsi_ssl.pipeline.report.render import ci, esc, table


def pooled_linear_table(metrics: dict[str, Any]) -> str:
    """HTML: the model against the pooled linear baseline (empty when the run has none)."""
    comp = metrics.get("comparison", {})
    entry = comp.get("pooled_linear")
    if not entry:
        return ""
    if "error" in entry:
        return f'<p class="note">The pooled linear baseline could not be fitted: {esc(entry["error"])}</p>'
    key, label = comp.get("metric", ""), comp.get("label", comp.get("metric", "metric"))
    rows: list[tuple[object, ...]] = [
        ("MIL model", ci(metrics.get("oof", {}).get(key))),
        ("pooled linear baseline (mean+max of tile features, same folds)", ci(entry.get(key))),
    ]
    gain = comp.get("gain_vs_pooled_linear")
    if gain:
        rows.append((f"MIL minus baseline ({gain.get('score', label)}, paired bootstrap)", ci(gain)))
    return table(["against a simple baseline", f"{label} [95% CI]"], rows)
