"""Statements of the churn capability: the rows of a chunk of customers as they stood at the end of a day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Select, String, delete, func, or_, select, type_coerce

from crm.churn.features import FRAME_COLUMNS, TIME_COLUMNS
from crm.ingest import rows_as_of
from models.churn import churn_scores
from models.loyalty import loyalty_tiers

# Where the data kinds of `features.FRAME_COLUMNS` come from (loyalty is the tier table, not a source entity).
ENTITY_OF_KIND = {kind: kind for kind in FRAME_COLUMNS if kind != "loyalty"}
TIME_COLUMN = {kind: column for kind, column in TIME_COLUMNS.items() if kind != "customers"}


def kind_rows(kind: str, as_of: date, lo: int, hi: int, *, since: datetime | None = None) -> Select:
    """Columns of `kind` for customers lo..hi as they stood at the end of `as_of` (optionally dated from `since`)."""
    if kind == "loyalty":
        t = loyalty_tiers
        return select(t.c.customer_id, t.c.tier).where(
            t.c.customer_id.between(lo, hi),
            t.c.valid_from <= as_of,
            or_(t.c.valid_to.is_(None), t.c.valid_to > as_of),
        )
    stmt = rows_as_of(ENTITY_OF_KIND[kind], as_of)
    cols = stmt.selected_columns
    stmt = stmt.with_only_columns(*[_raw_time(cols[c]) for c in FRAME_COLUMNS[kind]]).where(
        cols.customer_id.between(lo, hi)
    )
    if since is not None:
        stmt = stmt.where(cols[TIME_COLUMN[kind]] >= since)
    return stmt


def _raw_time(column):
    """Times as the driver gives them (ISO text on SQLite): pandas parses a column at once, SQLAlchemy row by row."""
    if isinstance(column.type, DateTime | Date):
        return type_coerce(column, String).label(column.name)
    return column


def kind_exists(kind: str, as_of: date) -> Select:
    """One row if `kind` has any row known at the end of `as_of`."""
    if kind == "loyalty":
        return select(loyalty_tiers.c.customer_id).where(loyalty_tiers.c.valid_from <= as_of).limit(1)
    stmt = rows_as_of(ENTITY_OF_KIND[kind], as_of)
    return stmt.with_only_columns(stmt.selected_columns.customer_id).limit(1)


def customer_ids(as_of: date) -> Select:
    """Ids of the customers known at the end of `as_of`, in order."""
    stmt = rows_as_of("customers", as_of)
    column = stmt.selected_columns.customer_id
    return stmt.with_only_columns(column).order_by(column)


def first_registration(as_of: date) -> Select:
    """When the oldest customer known at the end of `as_of` registered (the start of the company's history)."""
    sub = rows_as_of("customers", as_of).subquery()
    return select(func.min(sub.c.registered_at))


def delete_scores(as_of: date):
    """Remove a day's scores (re-scoring replaces them)."""
    return delete(churn_scores).where(churn_scores.c.as_of == as_of)


def day_scores(as_of: date) -> Select:
    """A day's scores in customer order."""
    c = churn_scores.c
    return (
        select(c.customer_id, c.probability, c.decile, c.model_version).where(c.as_of == as_of).order_by(c.customer_id)
    )
