"""The source system's database (the lending / retail back end), as the simulator writes it.

Columns are nullable on purpose: a real back end lets bad data through, and ingestion must
catch it. Every table has an index on (updated column, key) for watermark pulls.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, Integer, LargeBinary, MetaData, String, Table

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

# The world's ground truth about campaign messages it received (not part of the back end's data):
# how each customer reacted and whether the message caused a conversion, to check reports against.
simulated_reactions = Table(
    "simulated_reactions",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("segment", String(16), nullable=False, comment="lead | active | churned, when the message arrived"),
    Column("sent_on", Date, nullable=False, comment="The business day the message was planned for."),
    Column("reacted_on", Date, nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("opened", Boolean, nullable=False),
    Column("clicked", Boolean, nullable=False),
    Column("unsubscribed", Boolean, nullable=False),
    Column("conversion_on", Date, comment="Day of the conversion the message caused (null: none)."),
    Column("converted", Boolean, comment="True once it happened; False if the customer stayed busy all window."),
    Column("converted_on", Date),
)
