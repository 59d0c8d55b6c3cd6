"""Sending's tables: the outbox (one row per message, its state and timestamps), every dispatch attempt, every run."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table, Text

from models.base import metadata
from models.ingest import staging

outbox = Table(
    "outbox",
    metadata,
    Column(
        "message_id",
        String(32),
        primary_key=True,
        comment="Hash of (campaign_id, step, customer_id, wave): the provider's idempotency key.",
    ),
    Column("as_of", Date, nullable=False, comment="Business day the message was planned for."),
    Column("campaign_id", String(64), nullable=False),
    Column("step", Integer, nullable=False),
    Column("wave", Integer, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template_id", String(64), nullable=False),
    Column("params", Text, nullable=False, comment="Template parameters as JSON."),
    Column("consent_decision", String(32), nullable=False, comment="Why planning found the customer reachable."),
    Column("address", String(256), comment="Contact as of planning (personal data: masked everywhere it is shown)."),
    Column("not_before", DateTime, comment="Quiet hours: not sent before this time (business time zone)."),
    Column(
        "not_after",
        DateTime,
        comment="Quiet hours: not sent from this time on (business time zone), when the customer's quiet hours begin again.",
    ),
    Column("cost_minor", BigInteger, nullable=False, comment="Price of the message in minor units."),
    Column(
        "state", String(16), nullable=False, comment="planned | sending | sent | failed | skipped | delivered | ..."
    ),
    Column("skip_reason", String(32), comment="Why it was skipped (consent_withdrawn, unsubscribed, ...)."),
    Column("provider", String(64), comment="Provider of the last dispatch attempt."),
    Column("run_id", String(64), comment="Dispatch run that claimed it last."),
    Column("attempts", Integer, nullable=False, comment="Times a dispatch claimed it (2+ = re-sent after a kill)."),
    Column("claimed_at", DateTime),
    Column("sent_at", DateTime, comment="Accepted by the provider (wall clock), or reported sent."),
    Column("failed_at", DateTime),
    Column("skipped_at", DateTime),
    Column("delivered_at", DateTime, comment="From the provider's delivery report."),
    Column("bounced_at", DateTime, comment="The provider reported the delivery failed."),
    Column("opened_at", DateTime),
    Column("clicked_at", DateTime),
    Column("unsubscribed_at", DateTime),
    Column("last_error", String(512)),
)
Index(None, outbox.c.as_of, outbox.c.state)  # a day's dispatch claims its planned rows
Index(None, outbox.c.customer_id)  # cascades and contact budgets look a customer's messages up

dispatch_attempts = Table(
    "dispatch_attempts",
    metadata,
    Column("message_id", String(32), primary_key=True),
    Column("attempt", Integer, primary_key=True, comment="outbox.attempts at the claim; a gap = a killed attempt."),
    Column("run_id", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
    Column("outcome", String(16), nullable=False, comment="sent | rejected | unavailable"),
    Column("status_code", Integer, comment="HTTP status or SMTP reply code of the last request."),
    Column("requests", Integer, nullable=False, comment="Protocol requests made (1 + retries)."),
    Column("error", String(512)),
)

dispatch_runs = Table(
    "dispatch_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("forced_closed_gate", Boolean, nullable=False, comment="Sent although the send gate was closed."),
    Column("send_past_days", Boolean, nullable=False, comment="Sent for a day older than the newest ingested one."),
    Column("skipped", BigInteger, nullable=False),
    Column("claimed", BigInteger, nullable=False),
    Column("resent", BigInteger, nullable=False, comment="Claimed again after an interrupted attempt (same id)."),
    Column("sent", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("retried_requests", BigInteger, nullable=False, comment="Requests beyond the first per message."),
)

# Delivery reports are matched to the outbox by message id (ingestion's table, sending's lookup).
Index(None, staging["message_events"].c.message_id)
