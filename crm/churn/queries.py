"""Statements of the churn capability: the rows of a chunk of customers as they stood at the end of a day."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
    union,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from crm.churn.config import ChurnConfig
from crm.churn.features import (
    ACTIVITY_SOURCES,
    FRAME_COLUMNS,
    OPEN_LOAN,
    TIME_COLUMNS,
    Measure,
    measures,
    split_condition,
)
from crm.core.contracts import LoanStatus, OrderStatus
from crm.core.dates import end_of
from crm.ingest import rows_as_of
from models.churn import churn_scores
from models.loyalty import loyalty_tiers

# Where the data kinds of `features.FRAME_COLUMNS` come from (loyalty is the tier table, not a source entity).
ENTITY_OF_KIND = {kind: kind for kind in FRAME_COLUMNS if kind != "loyalty"}
TIME_COLUMN = {kind: column for kind, column in TIME_COLUMNS.items() if kind != "customers"}


def _kind_source(kind: str, as_of: date, lo: int | None, hi: int | None, since: datetime | None = None) -> Select:
    """Rows of `kind` (typed columns) for customers lo..hi (all when None) as they stood at the end of `as_of`."""
    if kind == "loyalty":
        t = loyalty_tiers
        stmt = select(t.c.customer_id, t.c.tier).where(
            t.c.valid_from <= as_of, or_(t.c.valid_to.is_(None), t.c.valid_to > as_of)
        )
    else:
        stmt = rows_as_of(ENTITY_OF_KIND[kind], as_of)
    cols = stmt.selected_columns
    if lo is not None and hi is not None:
        stmt = stmt.where(cols.customer_id.between(lo, hi))
    if since is not None:
        stmt = stmt.where(cols[TIME_COLUMN[kind]] >= since)
    return stmt


def kind_rows(kind: str, as_of: date, lo: int, hi: int, *, since: datetime | None = None) -> Select:
    """Columns of `kind` for customers lo..hi as they stood at the end of `as_of` (optionally dated from `since`)."""
    stmt = _kind_source(kind, as_of, lo, hi, since)
    cols = stmt.selected_columns
    return stmt.with_only_columns(*[_raw_time(cols[c]) for c in FRAME_COLUMNS[kind]])


class day_number(FunctionElement):
    """Days from 1970-01-01 to the date of a date or timestamp (an integer on every engine)."""

    type = Integer()
    inherit_cache = True


@compiles(day_number, "sqlite")
def _day_number_sqlite(element, compiler, **kw):
    return f"CAST(julianday(date({compiler.process(element.clauses, **kw)})) - 2440587.5 AS INTEGER)"


@compiles(day_number)
def _day_number_default(element, compiler, **kw):
    return f"(CAST({compiler.process(element.clauses, **kw)} AS DATE) - DATE '1970-01-01')"


def _condition(cols, condition: str, ref: datetime):
    if condition in ("late_known", "early"):
        repaid = cols.status == str(LoanStatus.REPAID)
    if condition == "late_known":
        return or_(and_(repaid, cols.closed_at.is_not(None)), cols.status.in_(OPEN_LOAN))
    if condition == "closed_known":
        return cols.closed_at < ref
    if condition == "early":
        return and_(repaid, day_number(cols.closed_at) < day_number(cols.due_on))
    column, values = split_condition(condition)
    return cols[column].in_(values) if len(values) > 1 else cols[column] == values[0]


def _value(cols, name: str, as_of: date, config: ChurnConfig):
    if name == "late_days":
        due = day_number(cols.due_on)
        days = case(
            (cols.status == str(LoanStatus.REPAID), day_number(cols.closed_at) - due),
            (cols.status.in_(OPEN_LOAN), literal((as_of - date(1970, 1, 1)).days) - due),
        )
        return case((days < 0, 0), else_=days)
    if name == "tier_rank":
        return case(*[(cols.tier == tier, i + 1) for i, tier in enumerate(config.features.loyalty_tiers)])
    return cols[name]


def _measure(cols, kind: str, m: Measure, as_of: date, config: ChurnConfig):
    ref = end_of(as_of)
    conditions = [_condition(cols, c, ref) for c in m.when]
    if m.within is not None:
        conditions.append(cols[TIME_COLUMN[kind]] > ref - timedelta(days=m.within))
    keep = and_(*conditions) if conditions else None
    if m.how == "count":
        if keep is None:
            return func.count().label(m.name)
        return func.sum(case((keep, 1), else_=0)).label(m.name)
    value = _value(cols, m.value, as_of, config)
    if m.how == "sum":
        summed = value if keep is None else case((keep, value), else_=0)
        return cast(func.sum(summed), Float).label(m.name)
    picked = getattr(func, m.how)(value if keep is None else case((keep, value)))
    if isinstance(value.type, DateTime | Date):
        return type_coerce(picked, String).label(m.name)
    return picked.label(m.name)


def kind_aggregates(
    kind: str,
    as_of: date,
    config: ChurnConfig,
    lo: int | None = None,
    hi: int | None = None,
    *,
    since: datetime | None = None,
    only: Select | None = None,
) -> Select:
    """One row per customer (lo..hi, or all; of `only` when given) with the `features.measures` of `kind`,
    from rows known by `as_of`."""
    stmt = _only(_kind_source(kind, as_of, lo, hi, since), only)
    cols = stmt.selected_columns
    if kind in TIME_COLUMN:
        stmt = stmt.where(cols[TIME_COLUMN[kind]] < end_of(as_of))
    aggregates = [_measure(cols, kind, m, as_of, config) for m in measures(config)[kind]]
    # Over the whole population, group on an expression: SQLite then reads the table in order and
    # sorts, instead of walking the customer_id index with one table lookup per row (3-4x slower).
    key = cols.customer_id if lo is not None else (cols.customer_id + 0)
    return stmt.with_only_columns(key.label("customer_id"), *aggregates).group_by(key)


def customers_rows(as_of: date, lo: int | None = None, hi: int | None = None, only: Select | None = None) -> Select:
    """The customers (lo..hi, or all; of `only` when given) as they stood at the end of `as_of`."""
    stmt = _only(_kind_source("customers", as_of, lo, hi), only)
    cols = stmt.selected_columns
    return stmt.with_only_columns(*[_raw_time(cols[c]) for c in FRAME_COLUMNS["customers"]])


def eligible_customers(as_of: date, config: ChurnConfig, lo: int | None = None, hi: int | None = None) -> Select:
    """Ids of the customers scored on `as_of` (lo..hi, or all): the rule of `features.eligible_from_aggregates`.

    Holding a loan, a repayment within `pre_churn_days`, a completed purchase within
    `retail_active_days`, from the rows known at the end of `as_of`. Training and scoring read the
    features of these customers only (a third of the base or less; nobody else's are used).
    """
    e, ref = config.eligibility, end_of(as_of)
    parts = []
    if e.borrowers_with_open_loan or e.active_repeat:
        stmt = _kind_source("loans", as_of, lo, hi)
        cols = stmt.selected_columns
        repaid_recently = and_(
            cols.status == str(LoanStatus.REPAID),
            cols.closed_at < ref,
            cols.closed_at >= ref - timedelta(days=e.pre_churn_days),
        )
        held = [cols.status.in_(OPEN_LOAN)] if e.borrowers_with_open_loan else []
        rules = [*held, repaid_recently] if e.active_repeat else held
        parts.append(stmt.with_only_columns(cols.customer_id).where(cols.issued_at < ref, or_(*rules)))
    if e.retail:
        stmt = _kind_source("orders", as_of, lo, hi)
        cols = stmt.selected_columns
        parts.append(
            stmt.with_only_columns(cols.customer_id).where(
                cols.status == str(OrderStatus.COMPLETED),
                cols.ordered_at < ref,
                cols.ordered_at > ref - timedelta(days=e.retail_active_days),
            )
        )
    return union(*parts) if len(parts) > 1 else parts[0].distinct()


def _only(stmt: Select, only: Select | None) -> Select:
    """`stmt` kept to the customers of `only` (on `customer_id + 0`: SQLite keeps its plan, a scan or the range)."""
    if only is None:
        return stmt
    return stmt.where((stmt.selected_columns.customer_id + 0).in_(only))


def customer_outside(as_of: date, lo: int, hi: int) -> Select:
    """One customer known at the end of `as_of` outside lo..hi, if any (a chunk of a larger base finds one at once)."""
    stmt = rows_as_of("customers", as_of)
    column = stmt.selected_columns.customer_id
    return stmt.with_only_columns(column).where(or_(column < lo, column > hi)).limit(1)


def returning_customers(
    snapshot: date, label_as_of: date, config: ChurnConfig, lo: int | None = None, hi: int | None = None
) -> Select:
    """Customers with counted activity in the horizon after `snapshot`, as known at the end of `label_as_of`."""
    start = end_of(snapshot)
    stop = end_of(snapshot + timedelta(days=config.horizon_days))
    parts = []
    for kind, column in dict.fromkeys(ACTIVITY_SOURCES[k] for k in config.activity_kinds):
        stmt = _kind_source(kind, label_as_of, lo, hi, since=start)
        cols = stmt.selected_columns
        parts.append(stmt.with_only_columns(cols.customer_id).where(cols[column] < stop))
    if not parts:
        return select(literal(0).label("customer_id")).where(~true())
    return union(*parts) if len(parts) > 1 else parts[0].distinct()


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
