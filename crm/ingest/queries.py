"""SQL statements of ingestion: watermarks, known ids, the file manifest and the quarantine summary."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, Table, Update, func, select, update

from crm.core.contracts import ENTITIES, Entity
from crm.core.dates import end_of
from crm.ingest.counts import FileStatus
from models.ingest import ingest_batches, ingest_watermarks, landing_files, quarantined_rows, staging


def watermark(entity: Entity) -> Select:
    """The stored watermark of a source table: watermark_at, watermark_key."""
    w = ingest_watermarks
    return select(w.c.watermark_at, w.c.watermark_key).where(w.c.source_table == entity.name)


def changed_up_to(table: Table, entity: Entity, as_of: date) -> Select:
    """Source rows whose last change lies before the end of `as_of` (the keyset adds the lower bound)."""
    return select(table).where(table.c[entity.updated_column] < end_of(as_of))


def without_watermark(table: Table, entity: Entity) -> Select:
    """How many source rows have no value in the updated column: a watermark pull never sees them."""
    return select(func.count()).select_from(table).where(table.c[entity.updated_column].is_(None))


def entity_ids(entity_name: str) -> Select:
    """Every key of an entity's `stg_` table (single-column keys)."""
    return select(staging[entity_name].c[ENTITIES[entity_name].key[0]])


def manifest_entries(file_key: str) -> Select:
    """The manifest rows of one landing file: checksum, status, size_bytes, version."""
    f = landing_files
    return select(f.c.checksum, f.c.status, f.c.size_bytes, f.c.version).where(f.c.file_key == file_key)


def remember_version(file_key: str, checksum: str, version: str) -> Update:
    """Put the store's current version of a file on the manifest row of its bytes (they were read again unchanged)."""
    f = landing_files
    return update(f).where(f.c.file_key == file_key, f.c.checksum == checksum).values(version=version)


def misplaced_entries() -> Select:
    """Misplaced files already on record: file_key, size_bytes."""
    f = landing_files
    return select(f.c.file_key, f.c.size_bytes).where(f.c.status == FileStatus.MISPLACED)


def rejected_entries(file_key: str) -> Select:
    """The manifest rows of a file that a run rejected or found misplaced: checksum, status, error, as_of."""
    f = landing_files
    return select(f.c.checksum, f.c.status, f.c.error, f.c.as_of).where(
        f.c.file_key == file_key, f.c.status.in_([FileStatus.FAILED, FileStatus.MISPLACED])
    )


def newest_change(table: Table, entity: Entity) -> Select:
    """The newest value of a source table's updated column (an indexed max)."""
    return select(func.max(table.c[entity.updated_column]))


def last_ingested_day() -> Select:
    """The newest business day any run loaded rows or files for (indexed maxima)."""
    return select(
        func.max(ingest_batches.c.as_of).label("batches"), select(func.max(landing_files.c.as_of)).scalar_subquery()
    )


def quarantine_by_rule(as_of: date, *, by_business_date: bool = False) -> Select:
    """Quarantined rows by source and rule, with one example reason each: of a run's day (`as_of`), or of
    the rows belonging to that day (`by_business_date`), whichever run loaded them."""
    q = quarantined_rows
    day = q.c.business_date if by_business_date else q.c.as_of
    return (
        select(q.c.source, q.c.rule, func.count().label("rows"), func.min(q.c.reason).label("example"))
        .where(day == as_of)
        .group_by(q.c.source, q.c.rule)
        .order_by(q.c.source, q.c.rule)
    )
