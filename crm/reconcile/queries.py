"""SQL statements of reconciliation: one aggregate scan per side, key filters, keys changed since a day."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Select, Table, and_, case, func, literal, select, tuple_

from crm.core.contracts import Entity
from crm.core.dates import end_of
from crm.reconcile.config import EntityCheck


def day_bounds(as_of: date) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the business day, as the naive timestamps the tables hold."""
    end = end_of(as_of)
    return end - timedelta(days=1), end


def aggregate_statement(table: Table, entity: Entity, check: EntityCheck, as_of: date) -> Select:
    """One scan of `table`: rows and amount sums per status value, whole and for the business day.

    Result columns: grp, rows_cumulative, rows_day, amount_cumulative, amount_day.
    """
    start, end = day_bounds(as_of)
    grp = table.c[check.status] if check.status else literal(None)
    amount = table.c[check.amount] if check.amount else literal(0)
    if check.business_time:
        when = table.c[check.business_time]
        on_day = and_(when >= start, when < end)
        rows_day = func.coalesce(func.sum(case((on_day, 1), else_=0)), 0)
        amount_day = func.coalesce(func.sum(case((on_day, amount), else_=0)), 0)
    else:
        rows_day = amount_day = literal(0)
    stmt = select(
        grp.label("grp"),
        func.count().label("rows_cumulative"),
        rows_day.label("rows_day"),
        func.coalesce(func.sum(amount), 0).label("amount_cumulative"),
        amount_day.label("amount_day"),
    ).where(table.c[entity.updated_column] < end)
    if check.status:
        stmt = stmt.group_by(grp)
    return stmt


def key_filter(table: Table, entity: Entity, keys: list[tuple]) -> ColumnElement:
    """Rows of `table` whose key is one of `keys`."""
    if len(entity.key) == 1:
        return table.c[entity.key[0]].in_([k[0] for k in keys])
    return tuple_(*[table.c[k] for k in entity.key]).in_(keys)


def key_columns(table: Table, entity: Entity) -> list:
    """The key columns of `table`, in key order."""
    return [table.c[k] for k in entity.key]


def changed_since(table: Table, entity: Entity, since: datetime) -> tuple[Select, list]:
    """Source rows changed at or after `since` (updated column and key) and their keyset order."""
    updated = table.c[entity.updated_column]
    order = [updated, *key_columns(table, entity)]
    return select(*order).where(updated >= since), order
