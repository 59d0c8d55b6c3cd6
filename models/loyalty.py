"""Loyalty's tables: the append-only cashback ledger, its FIFO allocations, the status account, tiers over time,
events for campaigns, promotion decisions and the runs."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, String, Table

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

loyalty_ledger = Table(
    "loyalty_ledger",
    metadata,
    Column("entry_id", String(32), primary_key=True, comment="Hash of (kind, source_kind, source_key)."),
    Column("customer_id", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False, comment="Business day the entry was posted."),
    Column("kind", String(16), nullable=False, comment="accrual | redemption | expiry | reversal | adjustment"),
    Column("amount_minor", BigInteger, nullable=False, comment="Signed: credits > 0, debits < 0."),
    Column(
        "source_kind",
        String(32),
        nullable=False,
        comment="order | order_promotion | interest_payment | loan_payment | signup | birthday | lot | entry | rule",
    ),
    Column("source_key", String(64), nullable=False, comment="The cause's key (order id, entry id of a lot, ...)."),
    Column("expires_on", Date, comment="Credits: the day what is left of it expires."),
    Column("rule", String(128), nullable=False, comment="The rule that produced it (rate, bonus, limit)."),
)
Index(None, loyalty_ledger.c.customer_id, loyalty_ledger.c.as_of)
Index(None, loyalty_ledger.c.as_of, loyalty_ledger.c.kind)
Index(None, loyalty_ledger.c.expires_on)
Index(None, loyalty_ledger.c.source_key, loyalty_ledger.c.source_kind)

loyalty_allocations = Table(
    "loyalty_allocations",
    metadata,
    Column("debit_entry_id", String(32), primary_key=True, comment="A redemption, expiry or reversal entry."),
    Column("lot_entry_id", String(32), primary_key=True, comment="The credit entry it consumed (first in, first out)."),
    Column("customer_id", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("amount_minor", BigInteger, nullable=False, comment="Consumed from the lot (> 0)."),
)
Index(None, loyalty_allocations.c.lot_entry_id)
Index(None, loyalty_allocations.c.customer_id)

loyalty_qualifying = Table(
    "loyalty_qualifying",
    metadata,
    Column("entry_id", String(32), primary_key=True, comment="Hash of (source_kind, source_key)."),
    Column("customer_id", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False, comment="Business day it was posted (the rolling window's day)."),
    Column("source_kind", String(32), nullable=False, comment="order | order_return | interest_payment"),
    Column("source_key", String(64), nullable=False),
    Column(
        "amount_minor",
        BigInteger,
        nullable=False,
        comment="100% of the qualifying amount (times a tier promotion), signed: the technical status account.",
    ),
)
Index(None, loyalty_qualifying.c.customer_id, loyalty_qualifying.c.as_of)
Index(None, loyalty_qualifying.c.as_of)

loyalty_events = Table(
    "loyalty_events",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "event", String(32), primary_key=True, comment="joined | tier_changed | cashback_accrued | cashback_expiring"
    ),
    Column("detail", String(256), comment="The new tier, the sources of the accrual, the expiry day."),
    Column("amount_minor", BigInteger),
)

promotion_decisions = Table(
    "promotion_decisions",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("promotion_id", String(64), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("decision", String(16), nullable=False, comment="chosen | rejected"),
    Column("reason", String(256), nullable=False),
    Column("benefit_minor", BigInteger, nullable=False, comment="Extra cashback the promotion would give."),
    Column("margin_after_bp", Integer, nullable=False, comment="The order's margin after cashback and promotion."),
)
Index(None, promotion_decisions.c.as_of)

loyalty_runs = Table(
    "loyalty_runs",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("rules_hash", String(64), nullable=False, comment="Hash of the rules (config/loyalty.yaml) used."),
    Column("entries_added", BigInteger, nullable=False, comment="Ledger entries the last run of the day added."),
    Column("entries_of_day", BigInteger, nullable=False, comment="Ledger entries posted on the day."),
    Column("members_touched", BigInteger, nullable=False),
    Column("tier_changes", BigInteger, nullable=False),
)
