"""Ingestion's tables: typed `stg_*` tables per entity and the bookkeeping of every load."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, PrimaryKeyConstraint, String, Table, Text

from crm.core.contracts import ENTITIES
from models.base import metadata
from models.columns import AutoId, entity_columns

staging: dict[str, Table] = {}
for _entity in ENTITIES.values():
    _table = Table(
        _entity.table_name,
        metadata,
        *entity_columns(_entity, enforce_required=True),
        # For a landing row, the date of its file (equal to the load's day on every in-order night).
        Column("ingested_on", Date, nullable=False, comment="Business day of the load that wrote the row."),
    )
    for _column in _entity.references:
        Index(None, _table.c[_column])
    staging[_entity.name] = _table

# Every version of the mutable source records (slowly changing dimension, type 2): a version is
# valid from its `updated_at` until the next version's, so any past day can be answered exactly.
history: dict[str, Table] = {}
for _entity in (e for e in ENTITIES.values() if e.versioned):
    _table = Table(
        _entity.history_table_name,
        metadata,
        *entity_columns(_entity, enforce_required=True, key_is_primary=False),
        Column("valid_from", DateTime, nullable=False, comment="When this version became true (its updated_at)."),
        Column("valid_to", DateTime, comment="When the next version replaced it; null while current."),
        Column("ingested_on", Date, nullable=False, comment="Business day of the load that wrote the version."),
        PrimaryKeyConstraint(*_entity.key, "valid_from"),
    )
    Index(None, _table.c.valid_from)  # versions that started on a day: the incremental refreshes
    history[_entity.name] = _table

ingest_watermarks = Table(
    "ingest_watermarks",
    metadata,
    Column("source_table", String(128), primary_key=True),
    Column("watermark_at", DateTime, nullable=False, comment="Updated-at of the last row loaded."),
    Column("watermark_key", String(256), nullable=False, comment="JSON key of the last row loaded (ties)."),
    Column("as_of", Date, nullable=False, comment="Business day of the run that moved it."),
)

landing_files = Table(
    "landing_files",
    metadata,
    Column("file_key", String(512), primary_key=True, comment="Path relative to the landing root."),
    Column("checksum", String(64), primary_key=True, comment="SHA-256 of the file's bytes."),
    Column("entity", String(64), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column(
        "version",
        String(160),
        comment="The store's version of the bytes read (mtime or ETag): while it stands, the file is not read again.",
    ),
    Column("status", String(16), nullable=False, comment="loaded | failed"),
    Column("error", Text),
    Column("as_of", Date, nullable=False, comment="Business day of the run that read it."),
)

quarantined_rows = Table(
    "quarantined_rows",
    metadata,
    Column("quarantine_id", AutoId, primary_key=True, autoincrement=True),
    Column("as_of", Date, nullable=False),
    Column(
        "business_date",
        Date,
        nullable=False,
        comment="The day the row belongs to: its file's date, or its source change's day.",
    ),
    Column("source", String(512), nullable=False, comment="file:<key> or db:<table>"),
    Column("entity", String(64), nullable=False),
    Column("row_number", BigInteger, comment="1-based data row in the file; null for database rows."),
    Column("record_key", String(256)),
    Column("rule", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("record", Text, nullable=False, comment="The rejected row as JSON, as it arrived."),
)
Index(None, quarantined_rows.c.as_of, quarantined_rows.c.source)
Index(None, quarantined_rows.c.business_date, quarantined_rows.c.source)

ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("source", String(512), primary_key=True),
    Column("entity", String(64), nullable=False),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_loaded", BigInteger, nullable=False),
    Column("rows_quarantined", BigInteger, nullable=False),
    Column("rows_duplicate", BigInteger, nullable=False),
)

# What each source brought for each business day (the day the data belongs to), whichever run
# loaded it: a day's freshness, volume and quarantine share are judged on this, so a backfill
# of a past day (or a re-run after later days) sees what that day's own night saw.
ingest_coverage = Table(
    "ingest_coverage",
    metadata,
    Column("business_date", Date, primary_key=True, comment="A landing file's date, or the day of a source change."),
    Column("source", String(512), primary_key=True, comment="file:<key> or db:<table>"),
    Column("entity", String(64), nullable=False),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_loaded", BigInteger, nullable=False),
    Column("rows_quarantined", BigInteger, nullable=False),
    Column("rows_duplicate", BigInteger, nullable=False),
)
