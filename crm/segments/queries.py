"""Segments' statements (built, not executed): the snapshot of a day, the day's changed customers, the aggregates."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union,
)

from crm.core.contracts import (
    APP_EVENTS,
    CHANNELS,
    CUSTOMER_CONTACTS,
    CUSTOMERS,
    LOAN_APPLICATIONS,
    LOANS,
    MESSAGE_EVENTS,
    ORDERS,
    PAYMENTS,
    AppEventType,
    ApplicationStatus,
    LoanStatus,
    MessageEventType,
    OrderStatus,
    PaymentType,
)
from crm.core.dates import end_of, start_of
from crm.core.db import sqlite_table_hint
from crm.ingest import rows_as_of
from crm.segments.derive import AGGREGATE_COLUMNS, DATE_COLUMNS, SEGMENT_COLUMNS
from crm.segments.states import SegmentChange, SegmentKind
from models.campaigns import purged_customers
from models.churn import churn_scores
from models.ingest import history, staging
from models.loyalty import loyalty_tiers
from models.segments import segment_aggregates, segment_events, segment_memberships

# The derived segments (is_technical last) with the churn and loyalty columns read beside them.
SNAPSHOT_COLUMNS = (*SEGMENT_COLUMNS[:-1], "churn_decile", "loyalty_tier", SEGMENT_COLUMNS[-1])


def valid_on(as_of: date) -> ColumnElement[bool]:
    """Memberships valid at the end of `as_of` (entered on or before it, not left by then)."""
    m = segment_memberships.c
    return and_(m.valid_from <= as_of, or_(m.valid_to.is_(None), m.valid_to > as_of))


def _value(kind: SegmentKind) -> ColumnElement:
    m = segment_memberships.c
    return func.max(case((m.kind == kind.value, m.segment)))


def _member(kind: SegmentKind, segment: str | None = None) -> ColumnElement:
    m = segment_memberships.c
    condition = m.kind == kind.value if segment is None else and_(m.kind == kind.value, m.segment == segment)
    return type_coerce(func.max(case((condition, 1), else_=0)) == 1, Boolean)


def _pivot(condition: ColumnElement[bool]) -> Select:
    """One row per customer with a membership matching `condition`, one column per kind (no external columns)."""
    rfm = _value(SegmentKind.RFM)  # "r5f3m2"
    return (
        select(
            segment_memberships.c.customer_id,
            _value(SegmentKind.LIFECYCLE).label("lifecycle_state"),
            _value(SegmentKind.LIFECYCLE_SUBSTATE).label("lifecycle_substate"),
            cast(func.substr(rfm, 2, 1), Integer).label("rfm_recency"),
            cast(func.substr(rfm, 4, 1), Integer).label("rfm_frequency"),
            cast(func.substr(rfm, 6, 1), Integer).label("rfm_monetary"),
            _value(SegmentKind.RFM_CELL).label("rfm_cell"),
            *[_member(SegmentKind.REACHABLE, channel).label(f"reachable_{channel}") for channel in CHANNELS],
            _value(SegmentKind.PREFERRED_CHANNEL).label("preferred_channel"),
            _member(SegmentKind.RETAIL).label("retail_active"),
            _member(SegmentKind.INTERSECTION).label("is_intersection"),
            _member(SegmentKind.TECHNICAL).label("is_technical"),
        )
        .where(condition)
        .group_by(segment_memberships.c.customer_id)
    )


def segment_snapshot(as_of: date) -> Select:
    """One row per customer known to segments at the end of `as_of`: every segment column, churn decile, loyalty tier.

    Columns: `SNAPSHOT_COLUMNS`. `churn_decile` comes from `churn_scores` of `as_of` and
    `loyalty_tier` from the tier valid at `as_of`; both are null when those tables have nothing.
    Select audiences from it (`.where(...)` on its subquery) and from `segment_events`.
    """
    pivot = _pivot(valid_on(as_of)).subquery("segments")
    tier = (
        select(loyalty_tiers.c.customer_id, loyalty_tiers.c.tier)
        .where(
            loyalty_tiers.c.valid_from <= as_of,
            or_(loyalty_tiers.c.valid_to.is_(None), loyalty_tiers.c.valid_to > as_of),
        )
        .subquery("tier")
    )
    score = (
        select(churn_scores.c.customer_id, churn_scores.c.decile).where(churn_scores.c.as_of == as_of).subquery("score")
    )
    columns = {c.name: c for c in pivot.c}
    columns["churn_decile"] = score.c.decile.label("churn_decile")
    columns["loyalty_tier"] = tier.c.tier.label("loyalty_tier")
    return (
        select(*[columns[name] for name in SNAPSHOT_COLUMNS])
        .select_from(
            pivot.outerjoin(score, score.c.customer_id == pivot.c.customer_id).outerjoin(
                tier, tier.c.customer_id == pivot.c.customer_id
            )
        )
        .order_by(pivot.c.customer_id)
    )


def open_segments() -> Select:
    """The current (open) memberships pivoted per customer, like the snapshot without external columns."""
    return _pivot(segment_memberships.c.valid_to.is_(None))


def segment_changes(
    as_of: date, kind: SegmentKind | str, segment: str, change: SegmentChange | str = SegmentChange.ENTERED
) -> Select:
    """Customers who entered (or left) `segment` of `kind` on `as_of`, with the rule: "entered pre_churn today"."""
    e = segment_events.c
    return select(e.customer_id, e.rule).where(
        e.as_of == as_of, e.kind == str(kind), e.segment == segment, e.change == str(change)
    )


def memberships_valid_on(as_of: date) -> Select:
    """Membership rows (customer, kind, segment, rule) valid at the end of `as_of`."""
    m = segment_memberships.c
    return select(m.customer_id, m.kind, m.segment, m.rule).where(valid_on(as_of))


# --------------------------------------------------------------------------- aggregates of a day


def _restrict(stmt: Select, column, customers: FromClause | None) -> Select:
    return stmt if customers is None else stmt.where(column.in_(select(customers.c.customer_id)))


def _count_if(condition) -> ColumnElement:
    return func.sum(case((condition, 1), else_=0))


def aggregate_statement(
    as_of: date, window_days: int, customers: FromClause | None = None, *, facts: bool = True
) -> Select:
    """Per-customer aggregates at the end of `as_of` from the warehouse history (`rows_as_of`), set-based.

    One row per customer known by then (restricted to the ids in `customers`, a table or
    subquery with a `customer_id` column, when given). Days come back as timestamps of the
    latest (or earliest) event; the derivation turns them into days. Without `facts`, the
    columns counted from app and message events alone (`FACT_COLUMNS`: logins, deliveries,
    reactions, the two largest tables) are left out: the incremental night has them from the
    stored row and the day's facts.
    """
    window_start = start_of(as_of - timedelta(days=window_days - 1))
    cust = rows_as_of(CUSTOMERS, as_of).subquery("cust")
    base = _restrict(
        select(cust.c.customer_id, cust.c.registered_at, cust.c.is_technical), cust.c.customer_id, customers
    )
    base = base.subquery("base")

    events = rows_as_of(APP_EVENTS, as_of).subquery("app_events")
    login = _restrict(
        select(events.c.customer_id, literal(1).label("has_login"))
        .where(events.c.event_type == AppEventType.LOGIN.value)
        .group_by(events.c.customer_id),
        events.c.customer_id,
        customers,
    ).subquery("login")

    a = rows_as_of(LOAN_APPLICATIONS, as_of).subquery("apps_as_of")
    status = a.c.status
    apps = _restrict(
        select(
            a.c.customer_id,
            func.count().label("apps"),
            _count_if(status.in_([ApplicationStatus.STARTED.value, ApplicationStatus.SUBMITTED.value])).label(
                "apps_pending"
            ),
            _count_if(status == ApplicationStatus.REJECTED.value).label("apps_rejected"),
            _count_if(status == ApplicationStatus.ISSUED.value).label("apps_issued"),
            func.max(case((status == ApplicationStatus.APPROVED.value, a.c.updated_at))).label("last_approved_on"),
            func.max(case((status == ApplicationStatus.ABANDONED.value, a.c.updated_at))).label("last_abandoned_on"),
            func.max(case((status == ApplicationStatus.EXPIRED.value, a.c.updated_at))).label("last_expired_on"),
        ).group_by(a.c.customer_id),
        a.c.customer_id,
        customers,
    ).subquery("apps")

    lo = rows_as_of(LOANS, as_of).subquery("loans_as_of")
    in_window = lo.c.issued_at >= window_start
    loans = _restrict(
        select(
            lo.c.customer_id,
            func.count().label("loans"),
            _count_if(lo.c.status.in_([LoanStatus.ACTIVE.value, LoanStatus.OVERDUE.value])).label("loans_open"),
            _count_if(lo.c.status == LoanStatus.REPAID.value).label("loans_repaid"),
            func.max(lo.c.issued_at).label("last_loan_on"),
            func.max(case((lo.c.status == LoanStatus.REPAID.value, lo.c.closed_at))).label("last_repaid_on"),
            _count_if(in_window).label("window_loans"),
            func.min(case((in_window, lo.c.issued_at))).label("first_loan_in_window"),
        ).group_by(lo.c.customer_id),
        lo.c.customer_id,
        customers,
    ).subquery("loans")

    p = rows_as_of(PAYMENTS, as_of).subquery("payments_as_of")
    interest = _restrict(
        select(
            p.c.customer_id,
            func.sum(p.c.amount_minor).label("window_interest_minor"),
            func.min(p.c.paid_at).label("first_interest_in_window"),
        )
        .where(p.c.payment_type == PaymentType.INTEREST.value, p.c.paid_at >= window_start)
        .group_by(p.c.customer_id),
        p.c.customer_id,
        customers,
    ).subquery("interest")

    o = rows_as_of(ORDERS, as_of).subquery("orders_as_of")
    order_in_window = o.c.ordered_at >= window_start
    orders = _restrict(
        select(
            o.c.customer_id,
            func.count().label("orders"),
            func.max(o.c.ordered_at).label("last_order_on"),
            _count_if(order_in_window).label("window_orders"),
            func.sum(case((order_in_window, o.c.amount_minor), else_=0)).label("window_order_minor"),
            func.min(case((order_in_window, o.c.ordered_at))).label("first_order_in_window"),
        )
        .where(o.c.status == OrderStatus.COMPLETED.value)
        .group_by(o.c.customer_id),
        o.c.customer_id,
        customers,
    ).subquery("orders")

    m = rows_as_of(MESSAGE_EVENTS, as_of).subquery("messages_as_of")
    reacted = m.c.event_type.in_([MessageEventType.OPENED.value, MessageEventType.CLICKED.value])
    messages = _restrict(
        select(
            m.c.customer_id,
            *[
                _count_if(and_(m.c.channel == ch, m.c.event_type == MessageEventType.DELIVERED.value)).label(
                    f"delivered_{ch}"
                )
                for ch in CHANNELS
            ],
            *[_count_if(and_(m.c.channel == ch, reacted)).label(f"reactions_{ch}") for ch in CHANNELS],
            func.max(case((reacted, m.c.occurred_at))).label("last_reaction_on"),
        ).group_by(m.c.customer_id),
        m.c.customer_id,
        customers,
    ).subquery("messages")

    unsub = _restrict(
        select(m.c.customer_id, m.c.channel, func.max(m.c.occurred_at).label("unsubscribed_at"))
        .where(m.c.event_type == MessageEventType.UNSUBSCRIBED.value)
        .group_by(m.c.customer_id, m.c.channel),
        m.c.customer_id,
        customers,
    ).subquery("unsubscribed")
    c = rows_as_of(CUSTOMER_CONTACTS, as_of).subquery("contacts_as_of")
    open_channel = and_(
        c.c.address.is_not(None),
        c.c.address != "",
        c.c.is_consented.is_(True),
        or_(unsub.c.unsubscribed_at.is_(None), unsub.c.unsubscribed_at <= c.c.updated_at),
    )
    contacts = _restrict(
        select(
            c.c.customer_id,
            *[
                func.max(case((and_(c.c.channel == ch, open_channel), 1), else_=0)).label(f"contact_{ch}")
                for ch in CHANNELS
            ],
        )
        .select_from(c.outerjoin(unsub, and_(unsub.c.customer_id == c.c.customer_id, unsub.c.channel == c.c.channel)))
        .group_by(c.c.customer_id),
        c.c.customer_id,
        customers,
    ).subquery("contacts")

    purged = _restrict(
        select(purged_customers.c.customer_id, literal(1).label("is_purged"))
        .where(purged_out_of_base(as_of))
        .group_by(purged_customers.c.customer_id),
        purged_customers.c.customer_id,
        customers,
    ).subquery("purged")

    def zero(column) -> ColumnElement:
        return func.coalesce(column, 0)

    def flag(column) -> ColumnElement:
        return type_coerce(func.coalesce(column, 0) == 1, Boolean)

    first_in_window = [
        loans.c.first_loan_in_window,
        interest.c.first_interest_in_window,
        orders.c.first_order_in_window,
    ]
    columns = [
        base.c.customer_id,
        flag(cast(base.c.is_technical, Integer)).label("is_technical"),
        *([flag(login.c.has_login).label("has_login")] if facts else []),
        *[zero(apps.c[n]).label(n) for n in ("apps", "apps_pending", "apps_rejected", "apps_issued")],
        *[zero(loans.c[n]).label(n) for n in ("loans", "loans_open", "loans_repaid")],
        zero(orders.c.orders).label("orders"),
        zero(loans.c.window_loans).label("window_loans"),
        zero(orders.c.window_orders).label("window_orders"),
        zero(interest.c.window_interest_minor).label("window_interest_minor"),
        zero(orders.c.window_order_minor).label("window_order_minor"),
        *[zero(messages.c[f"delivered_{ch}"]).label(f"delivered_{ch}") for ch in CHANNELS if facts],
        *[zero(messages.c[f"reactions_{ch}"]).label(f"reactions_{ch}") for ch in CHANNELS if facts],
        # Times come back as the driver gives them (text on SQLite): pandas parses a column at once,
        # much faster than a row-by-row result processor.
        _raw(base.c.registered_at).label("registered_on"),
        _raw(apps.c.last_approved_on).label("last_approved_on"),
        _raw(apps.c.last_abandoned_on).label("last_abandoned_on"),
        _raw(apps.c.last_expired_on).label("last_expired_on"),
        _raw(loans.c.last_loan_on).label("last_loan_on"),
        _raw(loans.c.last_repaid_on).label("last_repaid_on"),
        _raw(orders.c.last_order_on).label("last_order_on"),
        # The oldest activity in the window: the earliest of three nullable times, the same on both engines.
        _raw(_least(*first_in_window)).label("first_window_activity_on"),
        *([_raw(messages.c.last_reaction_on).label("last_reaction_on")] if facts else []),
        *[flag(contacts.c[f"contact_{ch}"]).label(f"contact_{ch}") for ch in CHANNELS],
        flag(purged.c.is_purged).label("is_purged"),
    ]
    joined = base
    for sub in (login, apps, loans, interest, orders, messages, contacts, purged):
        if not facts and sub in (login, messages):
            continue
        joined = joined.outerjoin(sub, sub.c.customer_id == base.c.customer_id)
    return select(*columns).select_from(joined)


def out_of_base_on(day: date) -> ColumnElement[bool]:
    """A `purged_customers` row that holds the customer out of the active base on `day`: purged by
    then and not restored by then (campaigns exclude on the day; segments read the day before)."""
    p = purged_customers.c
    return and_(p.purged_on <= day, or_(p.restored_on.is_(None), p.restored_on > day))


def purged_out_of_base(as_of: date) -> ColumnElement[bool]:
    """Out of the base for segments of `as_of`: as the night before left it.

    The purge runs in campaign planning, after segments; the day before's end makes a re-run of
    `as_of` (after that night's purge, or after a restore during the day) give what the night gave.
    """
    return out_of_base_on(as_of - timedelta(days=1))


def _raw(column) -> ColumnElement:
    return type_coerce(column, String)


def _least(*columns) -> ColumnElement:
    """The smallest non-null of nullable columns (SQLite's min() is null if any is; PostgreSQL's LEAST is not)."""
    result = columns[0]
    for column in columns[1:]:
        result = case(
            (result.is_(None), column),
            (column.is_(None), result),
            (column < result, column),
            else_=result,
        )
    return result


def changed_customers(as_of: date) -> Select:
    """Ids of customers whose inputs changed on `as_of`: versions valid from that day or loaded that day, facts loaded that day.

    A union of small index lookups (`valid_from`, `ingested_on`): the nightly cost follows the day's rows.
    """
    return union(*_version_parts(as_of), *_fact_parts(as_of))


def customers_to_refresh(as_of: date) -> Select:
    """`changed_customers` plus `due_for_recheck`: whose segments the incremental refresh of `as_of` re-derives."""
    return union(*_version_parts(as_of), *_fact_parts(as_of), due_for_recheck(as_of))


def customers_to_recompute(as_of: date, window_days: int) -> Select:
    """Whom the incremental refresh aggregates again from the history: a version changed, an unsubscribe, an
    activity left the RFM window.

    The other re-derived customers only had new facts (deliveries, reactions, logins, interest
    payments) or a threshold date due (pre-churn, approval validity, ...: their aggregates did not
    change, only the day): their stored aggregates plus `fact_deltas` give the same row (see io).
    """
    m = staging[MESSAGE_EVENTS.name]
    unsubscribed = select(m.c.customer_id).where(
        m.c.ingested_on == as_of, m.c.event_type == MessageEventType.UNSUBSCRIBED.value
    )
    p, before = purged_customers.c, as_of - timedelta(days=1)
    # Purged or restored by the night before: in or out of the base from this day on.
    moved_base = select(p.customer_id).where(or_(p.purged_on == before, p.restored_on == before))
    return union(*_version_parts(as_of), unsubscribed, moved_base, due_for_window_exit(as_of, window_days))


def _version_parts(as_of: date) -> list[Select]:
    start, end = start_of(as_of), end_of(as_of)
    parts = []
    for entity in (CUSTOMERS, CUSTOMER_CONTACTS, LOAN_APPLICATIONS, LOANS, ORDERS):
        h = history[entity.name]
        parts.append(select(h.c.customer_id).where(and_(h.c.valid_from >= start, h.c.valid_from < end)))
        parts.append(select(h.c.customer_id).where(h.c.ingested_on == as_of))
    return parts


# Only the message events segments read: deliveries and reactions (counted), unsubscribes (reachability).
_COUNTED_MESSAGES = (MessageEventType.DELIVERED, MessageEventType.OPENED, MessageEventType.CLICKED)


def _fact_parts(as_of: date) -> list[Select]:
    payments = staging[PAYMENTS.name]
    messages = staging[MESSAGE_EVENTS.name]
    events = staging[APP_EVENTS.name]
    read = [t.value for t in (*_COUNTED_MESSAGES, MessageEventType.UNSUBSCRIBED)]
    return [
        select(payments.c.customer_id).where(payments.c.ingested_on == as_of),
        select(messages.c.customer_id).where(messages.c.ingested_on == as_of, messages.c.event_type.in_(read)),
        select(events.c.customer_id).where(
            events.c.ingested_on == as_of, events.c.event_type == AppEventType.LOGIN.value
        ),
    ]


def fact_deltas(as_of: date, window_days: int, customers: FromClause | None = None) -> dict[str, Select]:
    """What the facts loaded on `as_of` add to each customer's aggregates (of `customers`, an id table, if given),
    one statement per fact table.

    Facts are immutable and loaded once (`ingested_on` is the day they arrived), so the day's
    rows known by the end of `as_of` are exactly what `aggregate_statement(as_of)` counts beyond
    the previous night's: counts and sums add, latest / earliest times take the max / min, the
    login flag ORs. Filters are those of `aggregate_statement` (times are raw, like there).
    """
    end = end_of(as_of)
    window_start = start_of(as_of - timedelta(days=window_days - 1))
    m = staging[MESSAGE_EVENTS.name].c
    reacted = m.event_type.in_([MessageEventType.OPENED.value, MessageEventType.CLICKED.value])
    delivered = m.event_type == MessageEventType.DELIVERED.value
    messages = (
        select(
            m.customer_id,
            *[_count_if(and_(m.channel == ch, delivered)).label(f"delivered_{ch}") for ch in CHANNELS],
            *[_count_if(and_(m.channel == ch, reacted)).label(f"reactions_{ch}") for ch in CHANNELS],
            _raw(func.max(case((reacted, m.occurred_at)))).label("last_reaction_on"),
        )
        .where(
            m.ingested_on == as_of,
            m.occurred_at < end,
            m.event_type.in_([t.value for t in _COUNTED_MESSAGES]),
        )
        .group_by(m.customer_id)
    )
    e = staging[APP_EVENTS.name].c
    logins = (
        select(e.customer_id)
        .where(e.ingested_on == as_of, e.occurred_at < end, e.event_type == AppEventType.LOGIN.value)
        .distinct()
        # SQLite would walk the (event_type, customer_id, occurred_at) index over every login ever (9 s at 100k).
    )
    logins = sqlite_table_hint(logins, APP_EVENTS.table_name, f"INDEXED BY ix_{APP_EVENTS.table_name}_ingested_on")
    p = staging[PAYMENTS.name].c
    interest = (
        select(
            p.customer_id,
            func.sum(p.amount_minor).label("window_interest_minor"),
            _raw(func.min(p.paid_at)).label("first_window_activity_on"),
        )
        .where(
            p.ingested_on == as_of,
            p.updated_at < end,
            p.payment_type == PaymentType.INTEREST.value,
            p.paid_at >= window_start,
        )
        .group_by(p.customer_id)
    )
    statements = {"messages": messages, "logins": logins, "interest": interest}
    columns = {"messages": m.customer_id, "logins": e.customer_id, "interest": p.customer_id}
    return {name: _restrict(stmt, columns[name], customers) for name, stmt in statements.items()}


def stored_aggregates(ids: FromClause, names: tuple[str, ...] = AGGREGATE_COLUMNS) -> Select:
    """The stored `segment_aggregates` rows of the customers in `ids`: `aggregate_statement`'s columns
    (those of `names`) and the hashes."""
    g = segment_aggregates.c
    columns = [_raw(g[name]).label(name) if name in DATE_COLUMNS else g[name] for name in names]
    return select(*columns, g.inputs_hash, g.segments_hash).where(g.customer_id.in_(select(ids.c.customer_id)))


def due_for_recheck(as_of: date) -> Select:
    """Ids of customers whose stored aggregates say a threshold moves them on or before `as_of`."""
    g = segment_aggregates.c
    return select(g.customer_id).where(g.recheck_on <= as_of)


def due_for_window_exit(as_of: date, window_days: int) -> Select:
    """Ids of the customers due for recheck on `as_of` because an activity left the RFM window (their counts change).

    An activity of day d counts in the windows of days up to d + window_days - 1; the stored
    `first_window_activity_on` is the oldest one counted the night before.
    """
    g = segment_aggregates.c
    return select(g.customer_id).where(
        g.recheck_on <= as_of, g.first_window_activity_on <= as_of - timedelta(days=window_days)
    )
