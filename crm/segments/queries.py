"""Segments' statements (built, not executed): the snapshot of a day, the day's changed customers, the aggregates."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, ColumnElement, Integer, Select, and_, case, cast, func, or_, select, type_coerce

from crm.core.contracts import CHANNELS
from crm.segments.states import SegmentKind
from models.churn import churn_scores
from models.loyalty import loyalty_tiers
from models.segments import segment_events, segment_memberships

SNAPSHOT_COLUMNS = (
    "customer_id",
    "lifecycle_state",
    "lifecycle_substate",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_cell",
    "reachable_push",
    "reachable_email",
    "reachable_sms",
    "preferred_channel",
    "retail_active",
    "is_intersection",
    "churn_decile",
    "loyalty_tier",
    "is_technical",
)


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


def segment_changes(as_of: date, kind: SegmentKind | str, segment: str, change: str = "entered") -> Select:
    """Customers who entered (or left) `segment` of `kind` on `as_of`, with the rule: "entered pre_churn today"."""
    e = segment_events.c
    return select(e.customer_id, e.rule).where(
        e.as_of == as_of, e.kind == str(kind), e.segment == segment, e.change == change
    )


def memberships_valid_on(as_of: date) -> Select:
    """Membership rows (customer, kind, segment, rule) valid at the end of `as_of`."""
    m = segment_memberships.c
    return select(m.customer_id, m.kind, m.segment, m.rule).where(valid_on(as_of))
