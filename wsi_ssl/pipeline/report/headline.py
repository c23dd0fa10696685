"""The run's headline figures: per task, the main out-of-fold metric of each encoder kind.

Read from each MIL run's ``metrics.json`` (never recomputed), so the figure the pipeline prints
last, the one in ``summary.json`` and the one in the report are the stage's own.
"""

from __future__ import annotations

import json

from wsi_ssl.pipeline.layout import Run


def headline(run: Run) -> list[dict[str, object]]:
    """Per task, the main out-of-fold metric with its CI for each encoder kind (from metrics.json)."""
    rows: list[dict[str, object]] = []
    for task in run.cfg.mil:
        row: dict[str, object] = {"task": task}
        for kind in run.kinds:
            path = run.layout.mil(kind, task) / "metrics.json"
            metrics = json.loads(path.read_text())
            key, label = _headline_metric(metrics.get("task", ""))
            value = metrics.get("oof", {}).get(key)
            row["metric"], row["label"] = key, label
            row[kind] = value
        rows.append(row)
    return rows


def headline_lines(rows: list[dict[str, object]], kinds: list[str]) -> list[str]:
    """The run's last lines: e.g. ``biomarker AUROC: pretrained 0.95 [0.90, 0.99] | random 0.70 [...]``."""
    lines = []
    for row in rows:
        parts = []
        for kind in kinds:
            v = row.get(kind)
            if isinstance(v, dict):
                parts.append(f"{kind} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]")
            else:
                parts.append(f"{kind} n/a")
        lines.append(f"{row['task']} {row['label']} (out-of-fold, 95% CI): " + " | ".join(parts))
    return lines


def _headline_metric(task_kind: str) -> tuple[str, str]:
    """The task kind's (metric key, label), from its Task object; empty for an unknown kind."""
    from wsi_ssl.mil.tasks.registry import get_task, task_kinds

    return get_task(task_kind).headline if task_kind in task_kinds() else ("", "")
