"""The send gate's table: each check's verdict per business day."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, String, Table, Text

from models.base import metadata

day_verdicts = Table(
    "day_verdicts",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("check_name", String(32), primary_key=True, comment="quality | reconciliation"),
    Column("fit_for_sending", Boolean, nullable=False),
    Column("summary", Text, nullable=False, comment="Why, in one paragraph a CRM manager can read."),
)
