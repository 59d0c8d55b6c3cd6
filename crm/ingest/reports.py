"""Ingestion's artifacts: counts per source and the day's summary (failed files, quarantine by rule)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.core.markdown import markdown_table, num
from crm.core.privacy import mask_contacts
from crm.ingest.counts import SourceStatus

TOTALS = ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")


def ingest_totals(table: pd.DataFrame) -> dict[str, int]:
    """Rows read, loaded, quarantined and duplicate over every source of a run."""
    return {k: int(table[k].sum()) for k in TOTALS}


def ingest_summary_markdown(as_of: date, table: pd.DataFrame, reasons: pd.DataFrame) -> str:
    """The run's summary: totals, landing files by outcome, failed files, quarantined rows by rule (masked)."""
    totals = ingest_totals(table)
    failed = table[table["status"] == SourceStatus.FAILED]
    files = table[table["source"].str.startswith("file:")]
    lines = [
        f"# Ingestion {as_of}",
        "",
        f"- rows read: **{totals['rows_read']:,}**, loaded: **{totals['rows_loaded']:,}**, "
        f"quarantined: **{totals['rows_quarantined']:,}**, duplicates: **{totals['rows_duplicate']:,}**",
        f"- landing files loaded: {int(files['status'].isin([SourceStatus.LOADED, SourceStatus.CHANGED]).sum())}, "
        f"already loaded before: {int((files['status'] == SourceStatus.ALREADY_LOADED).sum())}, "
        f"changed since loaded: {int((files['status'] == SourceStatus.CHANGED).sum())}, failed: {len(failed)}",
    ]
    if len(failed):
        lines += ["", "## Failed files", ""] + [f"- {mask_contacts(str(e))}" for e in failed["error"]]
    if len(reasons):
        shown = [{**r, "example": mask_contacts(str(r["example"]))} for r in reasons.to_dict("records")]
        lines += ["", "## Quarantined rows by rule", ""]
        lines += markdown_table(shown, ["source", "rule", num("rows"), "example"])
    return "\n".join(lines)
