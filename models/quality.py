"""Data quality's tables: one row per expectation and business day."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, String, Table, Text

from models.base import metadata

quality_results = Table(
    "quality_results",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("suite", String(128), primary_key=True),
    Column("expectation", String(256), primary_key=True, comment="Stable id: type and arguments."),
    Column("column_name", String(128)),
    Column("rule", String(64), nullable=False, comment="The rule the expectation checks (see expectations/README.md)."),
    Column("severity", String(16), nullable=False, comment="critical | warning"),
    Column("success", Boolean, nullable=False),
    Column("element_count", BigInteger),
    Column("unexpected_count", BigInteger),
    Column("unexpected_examples", Text, comment="A few offending values, contacts masked (JSON)."),
)
