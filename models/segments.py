"""Segments' tables: memberships as intervals, the day's entries and exits, sizes, runs, per-customer aggregates."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, Integer, String, Table, false

from models.base import metadata
from models.columns import AutoId
from models.ingest import history, staging

segment_memberships = Table(
    "segment_memberships",
    metadata,
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "kind",
        String(32),
        primary_key=True,
        comment="lifecycle | lifecycle_substate | rfm | rfm_cell | reachable | ...",
    ),
    Column(
        "segment", String(64), primary_key=True, comment="The value inside the kind (pre_churn, push, r5f3m2, ...)."
    ),
    Column("valid_from", Date, primary_key=True, comment="First business day in the segment."),
    Column("valid_to", Date, comment="First business day out of it; null while a member."),
    Column("rule", String(160), nullable=False, comment="The rule that put the customer in the segment."),
)
# No index on valid_to: nearly every row is open, so none would be read through it (migration 0016); none on
# (kind, segment, valid_from) either: every reader goes by customer or scans (migration 0017). On PostgreSQL
# migration 0017 also sets fillfactor 90 here (SQLAlchemy 2.0 cannot declare it on a Table): a night's closing
# of intervals stays in its page (a HOT update, no new primary key entry).

segment_events = Table(
    "segment_events",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("segment", String(64), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("change", String(8), nullable=False, comment="entered | left"),
    Column("rule", String(160), nullable=False, comment="The rule that moved the customer."),
)
# No index on customer_id: every reader goes by day (the key starts with as_of); it doubled the events' writes (0018).

segment_sizes = Table(
    "segment_sizes",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("segment", String(64), primary_key=True),
    Column("customers", BigInteger, nullable=False, comment="Members at the end of the day."),
    Column("entered", BigInteger, nullable=False),
    Column("left", BigInteger, nullable=False),
)

segment_runs = Table(
    "segment_runs",
    metadata,
    Column("run_id", AutoId, primary_key=True, autoincrement=True),
    Column("as_of", Date, nullable=False),
    Column("mode", String(16), nullable=False, comment="full | incremental | recheck | rewrite"),
    Column("customers_computed", BigInteger, nullable=False),
    Column("customers_changed", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("gate_open", Boolean, nullable=False, comment="Whether the day's send gate was open (else: data suspect)."),
    Column("differences", BigInteger, comment="recheck: customers whose recomputed row differs from the stored night."),
)
Index(None, segment_runs.c.as_of)

# One row per known customer: what the derivation needs, kept up to date by the nightly refresh.
segment_aggregates = Table(
    "segment_aggregates",
    metadata,
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("computed_on", Date, nullable=False, comment="Business day this row last changed."),
    Column(
        "inputs_hash",
        BigInteger,
        nullable=False,
        comment="Hash of the aggregates below: rows are rewritten only when it changes.",
    ),
    Column(
        "segments_hash",
        BigInteger,
        nullable=False,
        comment="Hash of the open memberships: only customers whose hash changed are diffed.",
    ),
    Column("recheck_on", Date, comment="First day a threshold flips a segment without new input; null: never."),
    Column("registered_on", Date),
    Column("is_technical", Boolean, nullable=False),
    Column("has_login", Boolean, nullable=False),
    Column("apps", Integer, nullable=False),
    Column("apps_pending", Integer, nullable=False, comment="started or submitted"),
    Column("apps_rejected", Integer, nullable=False),
    Column("apps_issued", Integer, nullable=False),
    Column("last_approved_on", Date, comment="Latest approval still in status approved."),
    Column("last_abandoned_on", Date),
    Column("last_expired_on", Date),
    Column("loans", Integer, nullable=False),
    Column("loans_open", Integer, nullable=False),
    Column("loans_repaid", Integer, nullable=False),
    Column("last_loan_on", Date),
    Column("last_repaid_on", Date),
    Column("orders", Integer, nullable=False, comment="completed"),
    Column("last_order_on", Date),
    Column("window_loans", Integer, nullable=False),
    Column("window_orders", Integer, nullable=False),
    Column("window_interest_minor", BigInteger, nullable=False),
    Column("window_order_minor", BigInteger, nullable=False),
    Column("first_window_activity_on", Date, comment="Oldest activity inside the RFM window (it leaves first)."),
    Column("contact_push", Boolean, nullable=False, comment="Address, consent, no newer unsubscribe."),
    Column("contact_email", Boolean, nullable=False),
    Column("contact_sms", Boolean, nullable=False),
    Column("delivered_push", Integer, nullable=False),
    Column("delivered_email", Integer, nullable=False),
    Column("delivered_sms", Integer, nullable=False),
    Column("reactions_push", Integer, nullable=False, comment="opened + clicked"),
    Column("reactions_email", Integer, nullable=False),
    Column("reactions_sms", Integer, nullable=False),
    Column("last_reaction_on", Date),
    Column(
        "is_purged",
        Boolean,
        nullable=False,
        server_default=false(),
        comment="Out of the active base (purged, not restored) at the end of the day before computed_on.",
    ),
)
Index(None, segment_aggregates.c.recheck_on)

# What the nightly refresh looks up on ingestion's tables: the rows a day added (late ones included).
for _name in ("payments", "message_events", "app_events"):
    Index(None, staging[_name].c.ingested_on)
for _name, _table in history.items():
    Index(None, _table.c.ingested_on)
# Logins ever made by a customer: a covering range instead of a walk through every app event.
Index(
    None, staging["app_events"].c.event_type, staging["app_events"].c.customer_id, staging["app_events"].c.occurred_at
)
# A customer's versions, for the incremental refresh of the day's customers (contacts and customers have it in their key).
for _name in ("loan_applications", "loans", "orders"):
    Index(None, history[_name].c.customer_id)
