"""SQL statements quality reads: the day's ingestion bookkeeping and the recent days' volumes."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Select, func, select

from models.ingest import ingest_batches, landing_files


def volume_history(as_of: date, days: int) -> Select:
    """Rows loaded per entity per day over the `days` days before `as_of`: as_of, entity, rows_loaded."""
    b = ingest_batches
    return (
        select(b.c.as_of, b.c.entity, func.sum(b.c.rows_loaded).label("rows_loaded"))
        .where(b.c.as_of < as_of, b.c.as_of >= as_of - timedelta(days=days))
        .group_by(b.c.as_of, b.c.entity)
    )


def day_batches(as_of: date) -> Select:
    """The `ingest_batches` rows of a business day."""
    return select(ingest_batches).where(ingest_batches.c.as_of == as_of)


def failed_files(as_of: date) -> Select:
    """Landing files a run of `as_of` rejected or found misplaced: file_key, error."""
    f = landing_files
    return select(f.c.file_key, f.c.error).where(f.c.as_of == as_of, f.c.status.in_(("failed", "misplaced")))


def recent_deliveries(as_of: date, days: int) -> Select:
    """Sources that delivered rows on the `days` days before `as_of`: as_of, source."""
    b = ingest_batches
    return select(b.c.as_of, b.c.source).where(
        b.c.as_of < as_of, b.c.as_of >= as_of - timedelta(days=days), b.c.rows_read > 0
    )
