"""Ingestion's artifacts: counts per source and the day's summary (failed files, quarantine by rule)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.core.markdown import markdown_table, num, shorten
from crm.core.privacy import mask_contacts
from crm.ingest.counts import FINDING_STATUSES, SourceStatus

TOTALS = ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")


def ingest_totals(table: pd.DataFrame) -> dict[str, int]:
    """Rows read, loaded, quarantined and duplicate over every source of a run."""
    return {k: int(table[k].sum()) for k in TOTALS}


def ingest_summary_markdown(as_of: date, table: pd.DataFrame, reasons: pd.DataFrame) -> str:
    """The run's summary: totals, landing files by outcome, rejected and misplaced files, quarantine by rule (masked)."""
    totals = ingest_totals(table)
    failed = table[table["status"].isin(FINDING_STATUSES)]
    files = table[table["source"].str.startswith("file:")]
    lines = [
        f"# Ingestion {as_of}",
        "",
        f"- rows read: **{totals['rows_read']:,}**, loaded: **{totals['rows_loaded']:,}**, "
        f"quarantined: **{totals['rows_quarantined']:,}**, duplicates: **{totals['rows_duplicate']:,}**",
        f"- landing files loaded: {int(files['status'].isin([SourceStatus.LOADED, SourceStatus.CHANGED]).sum())}, "
        f"already loaded before: {int((files['status'] == SourceStatus.ALREADY_LOADED).sum())}, "
        f"changed since loaded: {int((files['status'] == SourceStatus.CHANGED).sum())}, "
        f"rejected: {int((files['status'] == SourceStatus.FAILED).sum())}, "
        f"misplaced: {int((files['status'] == SourceStatus.MISPLACED).sum())}, "
        f"rejected by an earlier run (not read again): {int((files['status'] == SourceStatus.ALREADY_REJECTED).sum())}",
    ]
    if "rows_without_watermark" in table and table["rows_without_watermark"].fillna(0).sum():
        unseen = table[table["rows_without_watermark"].fillna(0) > 0]
        lines += ["", "## Source rows the watermark cannot see", ""]
        lines += [
            f"- {r['entity']}: **{int(r['rows_without_watermark']):,}** rows with no updated time are never pulled; "
            "stamp them with the time of the fix in the back end (the next run loads them)"
            for r in unseen.to_dict("records")
        ]
    if len(failed):
        lines += ["", "## Rejected and misplaced files", ""]
        lines += [f"- {mask_contacts(str(e))}" for e in failed["error"]]
        lines += [
            "",
            "Fix the file and deliver it under a new name, or run `crm landing retry <file>` after fixing it.",
        ]
    if len(reasons):
        shown = [{**r, "example": mask_contacts(str(r["example"]))} for r in reasons.to_dict("records")]
        lines += ["", "## Quarantined rows by rule", ""]
        lines += markdown_table(shown, ["source", "rule", num("rows"), "example"])
    return "\n".join(lines)


def counts_table(table: pd.DataFrame) -> list[dict]:
    """The run's counts as a Prefect table artifact that fits 1600 px: rejected and quarantining sources
    first, the outcome and the reason next to the source, counts with thousands separators."""
    if table.empty:
        return []
    shown = table.assign(
        _order=(~table["status"].isin(FINDING_STATUSES)).astype(int) * 2 + (table["rows_quarantined"] == 0).astype(int)
    ).sort_values(["_order", "source"], kind="stable")
    rows = []
    for r in shown.to_dict("records"):
        source = str(r["source"])
        error = "" if r["error"] is None or r["error"] != r["error"] else str(r["error"])
        error = error.removeprefix(source.removeprefix("file:") + ": ")  # the source column names the file
        rows.append(
            {
                "source": shorten(source, 70),
                "status": str(r["status"]),
                "reason": shorten(mask_contacts(error), 90),
                "read": f"{int(r['rows_read']):,}",
                "loaded": f"{int(r['rows_loaded']):,}",
                "quarantined": f"{int(r['rows_quarantined']):,}",
                "duplicate": f"{int(r['rows_duplicate']):,}",
            }
        )
    return rows
