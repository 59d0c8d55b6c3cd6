"""Reconciliation's tables: figures of both sides and mismatching ids per business day."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Float, String, Table

from models.base import metadata

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
