"""Churn's tables: the nightly scores (one row per scored customer and business day)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Float, SmallInteger, String, Table

from models.base import metadata

churn_scores = Table(
    "churn_scores",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "probability",
        Float,
        nullable=False,
        comment="Probability of no new loan, application or purchase within the horizon.",
    ),
    Column(
        "decile",
        SmallInteger,
        nullable=False,
        comment="Risk decile among the day's scored customers: 1 = highest risk.",
    ),
    Column("model_version", String(64), nullable=False),
)
