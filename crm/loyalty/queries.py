"""Loyalty's SQL, built but not executed: source rows as a night saw them, the ledger's state before a day."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Select, Table, and_, extract, func, or_, select

import models.warehouse  # noqa: F401 - registers every index on ingestion's tables (segments' `ingested_on` ones)
from crm.core.contracts import LoanStatus
from crm.core.db import sqlite_table_hint
from crm.ingest import rows_as_of
from models.loyalty import loyalty_allocations, loyalty_ledger, loyalty_qualifying, loyalty_runs, loyalty_tiers


def visible(entity: str, day: date, since: date | None = None) -> tuple[Select, Table]:
    """`rows_as_of(entity, day)` restricted to rows ingested by the day (and after `since`): what that night saw.

    `rows_as_of` answers by business time; a row ingested later with an earlier `updated_at` would
    appear in a recalculation of a past day and add entries that night never posted.
    """
    stmt = rows_as_of(entity, day)
    table = stmt.get_final_froms()[0]
    stmt = stmt.where(table.c.ingested_on <= day)
    if since is not None:
        stmt = stmt.where(table.c.ingested_on > since)
        if any(ix.name == f"ix_{table.name}_ingested_on" for ix in table.indexes):
            # SQLite would walk the `valid_from < end` index over the whole history instead.
            return sqlite_table_hint(stmt, table.name, f"INDEXED BY ix_{table.name}_ingested_on"), table
    # The whole population: one plain scan beats an index walk over nearly every row (SQLite).
    return sqlite_table_hint(stmt, table.name, "NOT INDEXED"), table


def candidates(entity: str, day: date, since: date | None, columns: tuple[str, ...]) -> Select:
    """`visible(entity, day, since)` with only the columns posting needs."""
    stmt, table = visible(entity, day, since)
    return stmt.with_only_columns(*[table.c[c] for c in columns])


def previous_run(day: date) -> Select:
    """The latest processed day before `day`."""
    return select(func.max(loyalty_runs.c.as_of)).where(loyalty_runs.c.as_of < day)


def last_run() -> Select:
    """The latest processed day."""
    return select(func.max(loyalty_runs.c.as_of))


def birthdays(day: date, pairs: tuple[tuple[int, int], ...]) -> Select:
    """Customers visible on the day whose birth date falls on one of the (month, day) pairs."""
    stmt, table = visible("customers", day)
    match = or_(
        *[and_(extract("month", table.c.birth_date) == m, extract("day", table.c.birth_date) == d) for m, d in pairs]
    )
    return stmt.with_only_columns(table.c.customer_id).where(match)


def technical_customers(day: date) -> Select:
    """Internal accounts (is_technical) visible on the day."""
    stmt, table = visible("customers", day)
    return stmt.with_only_columns(table.c.customer_id).where(table.c.is_technical.is_(True))


def lots_before(day: date, customers: Table | None = None, due_after: date | None = None) -> Select:
    """Open credits before `day` (with what is left of them): of the customers in the temp table, or else every
    lot due by the day (after `due_after`). Two statements, so each uses its index (customer, expiry day)."""
    used = (
        select(func.coalesce(func.sum(loyalty_allocations.c.amount_minor), 0))
        .where(loyalty_allocations.c.lot_entry_id == loyalty_ledger.c.entry_id, loyalty_allocations.c.as_of < day)
        .scalar_subquery()
    )
    stmt = select(
        loyalty_ledger.c.customer_id,
        loyalty_ledger.c.entry_id,
        loyalty_ledger.c.as_of,
        loyalty_ledger.c.expires_on,
        (loyalty_ledger.c.amount_minor - used).label("remaining_minor"),
    ).where(loyalty_ledger.c.amount_minor > 0, loyalty_ledger.c.as_of < day)
    if customers is not None:
        return stmt.where(loyalty_ledger.c.customer_id.in_(select(customers.c.customer_id)))
    stmt = stmt.where(loyalty_ledger.c.expires_on <= day)
    if due_after is not None:
        stmt = stmt.where(loyalty_ledger.c.expires_on > due_after)
    return stmt


def lots_due_on(expires_on: date, as_of: date, span: tuple[int | None, int | None] = (None, None)) -> Select:
    """Credits expiring on `expires_on`, with what is left of them at the end of `as_of` (of customers in the
    half-open id range `span`, None: unbounded)."""
    used = (
        select(func.coalesce(func.sum(loyalty_allocations.c.amount_minor), 0))
        .where(loyalty_allocations.c.lot_entry_id == loyalty_ledger.c.entry_id, loyalty_allocations.c.as_of <= as_of)
        .scalar_subquery()
    )
    stmt = select(
        loyalty_ledger.c.customer_id,
        loyalty_ledger.c.expires_on,
        (loyalty_ledger.c.amount_minor - used).label("remaining_minor"),
    ).where(
        loyalty_ledger.c.expires_on == expires_on, loyalty_ledger.c.amount_minor > 0, loyalty_ledger.c.as_of <= as_of
    )
    lo, hi = span
    if lo is not None:
        stmt = stmt.where(loyalty_ledger.c.customer_id >= lo)
    if hi is not None:
        stmt = stmt.where(loyalty_ledger.c.customer_id < hi)
    return stmt


def entries_by_id(ids: Table, before: date) -> Select:
    """Ledger entries whose id is in the temp table, posted before `before`."""
    return select(
        loyalty_ledger.c.entry_id,
        loyalty_ledger.c.customer_id,
        loyalty_ledger.c.kind,
        loyalty_ledger.c.amount_minor,
        loyalty_ledger.c.source_kind,
        loyalty_ledger.c.source_key,
    ).where(loyalty_ledger.c.entry_id.in_(select(ids.c.entry_id)), loyalty_ledger.c.as_of < before)


def qualifying_by_id(ids: Table, before: date) -> Select:
    """Status-account entries whose id is in the temp table, posted before `before`."""
    q = loyalty_qualifying
    return select(q.c.entry_id, q.c.customer_id, q.c.source_kind, q.c.source_key, q.c.amount_minor).where(
        q.c.entry_id.in_(select(ids.c.entry_id)), q.c.as_of < before
    )


def tiers_valid_on(day: date, customers: Table | None = None) -> Select:
    """Each member's tier row valid on `day` (customer_id, tier, valid_from)."""
    t = loyalty_tiers
    stmt = select(t.c.customer_id, t.c.tier, t.c.valid_from).where(
        t.c.valid_from <= day, or_(t.c.valid_to.is_(None), t.c.valid_to > day)
    )
    if customers is not None:
        stmt = stmt.where(t.c.customer_id.in_(select(customers.c.customer_id)))
    return stmt


def qualifying_sums(customers: Table, first: date, last: date) -> Select:
    """Qualifying activity posted in [first, last] per customer of the temp table."""
    q = loyalty_qualifying
    return (
        select(q.c.customer_id, func.sum(q.c.amount_minor).label("qualifying_minor"))
        .where(q.c.customer_id.in_(select(customers.c.customer_id)), q.c.as_of >= first, q.c.as_of <= last)
        .group_by(q.c.customer_id)
    )


def posted_on(day: date) -> Select:
    """Customers with qualifying activity posted on `day` (the day that leaves the window today)."""
    return select(loyalty_qualifying.c.customer_id).where(loyalty_qualifying.c.as_of == day).distinct()


def downgraded(day: date, downgrade_days: int) -> Select:
    """Customers with a loan written off (closed) within the downgrade period, as that night saw the loans."""
    stmt, table = visible("loans", day)
    since = day - timedelta(days=downgrade_days - 1)
    return (
        stmt.with_only_columns(table.c.customer_id)
        .where(table.c.status == LoanStatus.WRITTEN_OFF, table.c.closed_at >= since)
        .distinct()
    )


def left_downgrade(day: date, downgrade_days: int) -> Select:
    """Customers whose write-off left the downgrade period today (their tier may rise again)."""
    stmt, table = visible("loans", day)
    start = day - timedelta(days=downgrade_days)
    return (
        stmt.with_only_columns(table.c.customer_id)
        .where(
            table.c.status == LoanStatus.WRITTEN_OFF,
            table.c.closed_at >= start,
            table.c.closed_at < start + timedelta(days=1),
        )
        .distinct()
    )


def touched_entries(customers: Table) -> tuple[Select, Select]:
    """Every entry and allocation of the customers in the temp table (for the invariant check)."""
    e = select(loyalty_ledger).where(loyalty_ledger.c.customer_id.in_(select(customers.c.customer_id)))
    a = select(loyalty_allocations).where(loyalty_allocations.c.customer_id.in_(select(customers.c.customer_id)))
    return e, a


def outstanding(day: date) -> Select:
    """The programme's liability at the end of `day`: the sum of every entry posted by then."""
    return select(func.coalesce(func.sum(loyalty_ledger.c.amount_minor), 0)).where(loyalty_ledger.c.as_of <= day)


def expiring_between(first: date, last: date, as_of: date) -> Select:
    """What is left (at the end of `as_of`) of the credits expiring in [first, last]."""
    used = (
        select(func.coalesce(func.sum(loyalty_allocations.c.amount_minor), 0))
        .where(loyalty_allocations.c.lot_entry_id == loyalty_ledger.c.entry_id, loyalty_allocations.c.as_of <= as_of)
        .scalar_subquery()
    )
    return select(func.coalesce(func.sum(loyalty_ledger.c.amount_minor - used), 0)).where(
        loyalty_ledger.c.amount_minor > 0,
        loyalty_ledger.c.as_of <= as_of,
        loyalty_ledger.c.expires_on >= first,
        loyalty_ledger.c.expires_on <= last,
    )


def flows_per_day(first: date, last: date) -> Select:
    """Accrued, redeemed, expired, reversed per posting day (sums of entries by kind)."""
    e = loyalty_ledger
    return (
        select(e.c.as_of, e.c.kind, func.sum(e.c.amount_minor).label("amount_minor"))
        .where(e.c.as_of >= first, e.c.as_of <= last)
        .group_by(e.c.as_of, e.c.kind)
    )


def tier_counts(day: date) -> Select:
    """Members per tier on `day`."""
    t = tiers_valid_on(day).subquery()
    return select(t.c.tier, func.count().label("members")).group_by(t.c.tier)


def tier_migration(before: date, day: date) -> Select:
    """Members by (tier on `before`, tier on `day`); a member who joined since has no tier before."""
    old = tiers_valid_on(before).subquery("old")
    new = tiers_valid_on(day).subquery("new")
    return (
        select(old.c.tier.label("from_tier"), new.c.tier.label("to_tier"), func.count().label("members"))
        .select_from(new.outerjoin(old, old.c.customer_id == new.c.customer_id))
        .group_by(old.c.tier, new.c.tier)
    )


def intersection_customers(day: date) -> tuple[Select, Select]:
    """Customers with a loan or pawn ticket, and customers with a retail order, as that night saw them."""
    loans, lt = visible("loans", day)
    orders, ot = visible("orders", day)
    return loans.with_only_columns(lt.c.customer_id).distinct(), orders.with_only_columns(ot.c.customer_id).distinct()
