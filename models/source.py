"""The source system's database (the lending / retail back end), as the simulator writes it.

Columns are nullable on purpose: a real back end lets bad data through, and ingestion must
catch it. Every table has an index on (updated column, key) for watermark pulls.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Index, Integer, LargeBinary, MetaData, String, Table

from crm.core.contracts import SOURCE_ENTITIES
from models.columns import entity_columns

metadata = MetaData()

tables: dict[str, Table] = {}
for _entity in SOURCE_ENTITIES:
    _table = Table(_entity.name, metadata, *entity_columns(_entity, enforce_required=False))
    Index(f"ix_{_entity.name}_watermark", _table.c[_entity.updated_column], *[_table.c[k] for k in _entity.key])
    tables[_entity.name] = _table

# The simulated world's own state between runs (one row): not part of the back end's data.
simulator_state = Table(
    "simulator_state",
    metadata,
    Column("state_id", Integer, primary_key=True),
    Column("last_day", Date, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("config_json", String(4000), nullable=False),
    Column("state_blob", LargeBinary, nullable=False),
)
