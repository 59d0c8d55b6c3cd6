"""Integration health: each source rated ok / problems / many errors from the day's bookkeeping. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from crm.core.contracts import SOURCE_ENTITIES
from crm.core.privacy import mask_value
from crm.quality.config import HealthThresholds


class HealthStatus(StrEnum):
    """How an integration did today, worst first."""

    MANY_ERRORS = "many errors"
    PROBLEMS = "problems"
    OK = "ok"


_FILE_KEY = re.compile(r"^(?P<entity>[^/]+)/(?P<stem>.+?)_\d{4}-\d{2}-\d{2}\.[a-z]+(\.gz)?$")
HEALTH_ORDER = {status: rank for rank, status in enumerate(HealthStatus)}


def integration_name(source: str) -> str:
    """The integration a source belongs to: `db:<table>`, `file:<entity>` or `file:<entity>/<provider>`."""
    if not source.startswith("file:"):
        return source
    key = source.removeprefix("file:")
    match = _FILE_KEY.match(key)
    if not match:
        return f"file:{key.split('/', 1)[0]}"
    entity, stem = match["entity"], match["stem"]
    return f"file:{entity}" if stem == entity else f"file:{entity}/{stem}"


@dataclass
class HealthInputs:
    """What integration health is computed from (all for one business day)."""

    batches: pd.DataFrame  # ingest_batches rows of the day
    failed_files: pd.DataFrame  # landing_files rows of the day rejected or misplaced (file_key, error)
    reasons: pd.DataFrame  # quarantine by source and rule: source, rule, rows, example
    recent: pd.DataFrame  # sources that delivered rows on recent days: as_of, source


def classify_integrations(inputs: HealthInputs, thresholds: HealthThresholds) -> pd.DataFrame:
    """Per integration: status (ok / problems / many errors), counts, error share and top reasons."""
    batches = inputs.batches.copy()
    batches["integration"] = [integration_name(s) for s in batches["source"]] if len(batches) else []
    failed = inputs.failed_files.copy()
    failed["integration"] = [integration_name(f"file:{k}") for k in failed["file_key"]] if len(failed) else []
    reasons = inputs.reasons.copy()
    reasons["integration"] = [integration_name(s) for s in reasons["source"]] if len(reasons) else []
    recent = inputs.recent.copy()
    recent["integration"] = [integration_name(s) for s in recent["source"]] if len(recent) else []
    recent_days = sorted(set(recent["as_of"])) if len(recent) else []

    names = {f"db:{e.name}" for e in SOURCE_ENTITIES}
    names |= set(batches["integration"]) | set(failed["integration"]) | set(recent["integration"])
    out = []
    for name in sorted(names):
        mine = batches[batches["integration"] == name]
        read = int(mine["rows_read"].sum()) if len(mine) else 0
        loaded = int(mine["rows_loaded"].sum()) if len(mine) else 0
        quarantined = int(mine["rows_quarantined"].sum()) if len(mine) else 0
        duplicate = int(mine["rows_duplicate"].sum()) if len(mine) else 0
        files_failed = failed[failed["integration"] == name]
        share = quarantined / read if read else 0.0
        delivered_days = set(recent.loc[recent["integration"] == name, "as_of"])
        silent = read == 0 and len(files_failed) == 0 and recent_days and delivered_days >= set(recent_days)

        notes: list[str] = []
        for error in files_failed["error"].head(thresholds.top_reasons):
            notes.append(f"file rejected or misplaced: {mask_value(error)}")
        top = (
            reasons[reasons["integration"] == name]
            .groupby("rule", as_index=False)
            .agg(rows=("rows", "sum"), example=("example", "min"))
        )
        top = top.sort_values(["rows", "rule"], ascending=[False, True]).head(thresholds.top_reasons)
        notes += [f"{r.rule}: {int(r.rows):,} (e.g. {mask_value(r.example)})" for r in top.itertuples()]
        if silent:
            notes.append(f"no rows today, although it delivered on each of the last {len(recent_days)} ingested day(s)")

        if len(files_failed) or share > thresholds.many_errors_share:
            status = HealthStatus.MANY_ERRORS
        elif share > thresholds.problems_share or silent:
            status = HealthStatus.PROBLEMS
        else:
            status = HealthStatus.OK
        out.append(
            {
                "integration": name,
                "status": status,
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_quarantined": quarantined,
                "rows_duplicate": duplicate,
                "files_failed": len(files_failed),
                "error_share": round(share, 6),
                "top_reasons": notes,
            }
        )
    frame = pd.DataFrame(out)
    if len(frame):
        frame = frame.sort_values(
            ["status", "integration"], key=lambda s: s.map(HEALTH_ORDER) if s.name == "status" else s
        )
    return frame.reset_index(drop=True)
