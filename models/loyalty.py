"""Loyalty's tables: the tier of each member over time (valid from / to a business day)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, String, Table

from models.base import metadata

loyalty_tiers = Table(
    "loyalty_tiers",
    metadata,
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("valid_from", Date, primary_key=True, comment="First business day in this tier."),
    Column("valid_to", Date, comment="First business day in the next tier; null while current."),
    Column("tier", String(32), nullable=False),
    Column("rule", String(128), nullable=False, comment="The rule that put the member in this tier."),
)
