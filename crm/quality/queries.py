"""SQL statements quality reads: a business day's ingestion bookkeeping and the recent days' volumes.

Every statement selects by business date (the day the data belongs to, `ingest_coverage` and
`landing_files.business_date`), never by the run that loaded it: a past day re-checked after
later loads, or backfilled after them, is judged on the same rows as on its own night.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Select, func, or_, select

from crm.ingest import FileStatus
from models.ingest import ingest_coverage, landing_files


def volume_history(as_of: date, days: int) -> Select:
    """Rows loaded per entity per business day over the `days` days before `as_of`: as_of, entity, rows_loaded."""
    c = ingest_coverage
    return (
        select(c.c.business_date.label("as_of"), c.c.entity, func.sum(c.c.rows_loaded).label("rows_loaded"))
        .where(c.c.business_date < as_of, c.c.business_date >= as_of - timedelta(days=days))
        .group_by(c.c.business_date, c.c.entity)
    )


def day_batches(as_of: date) -> Select:
    """What each source brought for a business day: source, entity and the row counts."""
    c = ingest_coverage
    return select(
        c.c.source, c.c.entity, c.c.rows_read, c.c.rows_loaded, c.c.rows_quarantined, c.c.rows_duplicate
    ).where(c.c.business_date == as_of)


def failed_files(as_of: date) -> Select:
    """Landing files rejected or found misplaced that are dated `as_of` or that the run of `as_of` met:
    file_key, error (a late bad file closes the night that met it, too)."""
    f = landing_files
    return select(f.c.file_key, f.c.error).where(
        or_(f.c.business_date == as_of, f.c.as_of == as_of), f.c.status.in_((FileStatus.FAILED, FileStatus.MISPLACED))
    )


def recent_deliveries(as_of: date, days: int) -> Select:
    """Sources that delivered rows for the `days` business days before `as_of`: as_of, source."""
    c = ingest_coverage
    return select(c.c.business_date.label("as_of"), c.c.source).where(
        c.c.business_date < as_of, c.c.business_date >= as_of - timedelta(days=days), c.c.rows_read > 0
    )
