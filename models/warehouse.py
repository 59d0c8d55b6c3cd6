"""The CRM warehouse: typed `stg_*` tables per entity and the ingestion bookkeeping.

Schema changes go through Alembic (`infra/migrations`); this metadata is what
`alembic revision --autogenerate` compares against.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Float, Index, MetaData, String, Table, Text

from crm.contracts import ENTITIES
from models.columns import AutoId, entity_columns

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

staging: dict[str, Table] = {}
for _entity in ENTITIES.values():
    _table = Table(
        _entity.table_name,
        metadata,
        *entity_columns(_entity, enforce_required=True),
        Column("ingested_on", Date, nullable=False, comment="Business day of the load that wrote the row."),
    )
    for _column in _entity.references:
        Index(None, _table.c[_column])
    staging[_entity.name] = _table

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
    Column("status", String(16), nullable=False, comment="loaded | failed"),
    Column("error", Text),
    Column("as_of", Date, nullable=False, comment="Business day of the run that read it."),
)

quarantined_rows = Table(
    "quarantined_rows",
    metadata,
    Column("quarantine_id", AutoId, primary_key=True, autoincrement=True),
    Column("as_of", Date, nullable=False),
    Column("source", String(512), nullable=False, comment="file:<key> or db:<table>"),
    Column("entity", String(64), nullable=False),
    Column("row_number", BigInteger, comment="1-based data row in the file; null for database rows."),
    Column("record_key", String(256)),
    Column("rule", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("record", Text, nullable=False, comment="The rejected row as JSON, as it arrived."),
)
Index(None, quarantined_rows.c.as_of, quarantined_rows.c.source)

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

# --------------------------------------------------------------------------- data quality

quality_results = Table(
    "quality_results",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("suite", String(128), primary_key=True),
    Column("expectation", String(256), primary_key=True, comment="Stable id: type and arguments."),
    Column("column_name", String(128)),
    Column("severity", String(16), nullable=False, comment="critical | warning"),
    Column("success", Boolean, nullable=False),
    Column("element_count", BigInteger),
    Column("unexpected_count", BigInteger),
    Column("unexpected_examples", Text, comment="A few offending values, contacts masked (JSON)."),
)

reconciliation_results = Table(
    "reconciliation_results",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("entity", String(64), primary_key=True),
    Column("metric", String(128), primary_key=True, comment="e.g. rows, rows[status=repaid], sum(amount_minor)"),
    Column("scope", String(16), primary_key=True, comment="day | cumulative"),
    Column("source_value", BigInteger, nullable=False),
    Column("warehouse_value", BigInteger, nullable=False),
    Column("divergence", Float, nullable=False, comment="|source - warehouse| / max(|source|, 1)"),
    Column("threshold", Float, nullable=False),
    Column("passed", Boolean, nullable=False),
)

reconciliation_mismatches = Table(
    "reconciliation_mismatches",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("entity", String(64), primary_key=True),
    Column("record_id", String(256), primary_key=True, comment="The key as JSON."),
    Column("kind", String(32), primary_key=True, comment="missing | extra | different_status | different_amount"),
    Column("source_value", String(256)),
    Column("warehouse_value", String(256)),
)

day_verdicts = Table(
    "day_verdicts",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("check_name", String(32), primary_key=True, comment="quality | reconciliation"),
    Column("fit_for_sending", Boolean, nullable=False),
    Column("summary", Text, nullable=False, comment="Why, in one paragraph a CRM manager can read."),
)
