"""Ingestion's artifacts: counts per source and the day's summary (failed files, quarantine by rule)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.core.markdown import markdown_table, num
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
