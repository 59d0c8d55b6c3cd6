"""Campaigns' tables: who entered which campaign (and in which group), every candidate message's decision,
planning runs (forced ones on record), and the customers archived out of the active base."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table, Text

from models.base import metadata
from models.ingest import history

campaign_entries = Table(
    "campaign_entries",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("wave", Integer, primary_key=True, autoincrement=False, comment="1 for the first entry, 2 on re-entry..."),
    Column("campaign_version", Integer, nullable=False),
    Column("entered_on", Date, nullable=False),
    Column("group", String(16), nullable=False, comment="treatment | control (hash of campaign and customer)"),
    Column("exited_on", Date),
    Column("exit_reason", String(16), comment="converted | completed | expired | purged"),
)
Index(None, campaign_entries.c.entered_on)
Index(None, campaign_entries.c.customer_id)

campaign_decisions = Table(
    "campaign_decisions",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("campaign_id", String(64), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("wave", Integer, primary_key=True, autoincrement=False),
    Column("step", Integer, primary_key=True, autoincrement=False, comment="The campaign's step (1, 2, ...)."),
    Column("channel", String(16), primary_key=True),
    Column("touch", Integer, nullable=False, comment="0 = first reachable channel of the cascade, 1 = next..."),
    Column("group", String(16), nullable=False),
    Column("decision", String(16), nullable=False, comment="planned | skipped"),
    Column("reason", String(32), nullable=False, comment="consented, no_free_channel, control, no_consent, capped..."),
    Column("message_id", String(32), comment="The outbox message (planned ones)."),
    Column("not_before", DateTime, comment="Quiet hours: the message waits until then (business time zone)."),
    Column("cost_minor", BigInteger, comment="Price of the planned message."),
    Column(
        "sms_reachable",
        Boolean,
        nullable=False,
        comment="The customer could get an SMS that day (the SMS-to-everyone baseline of the cascade's saving).",
    ),
)
Index(None, campaign_decisions.c.customer_id)

campaign_runs = Table(
    "campaign_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("started_at", DateTime, nullable=False, comment="Wall clock (a record, never a business date)."),
    Column("gate_open", Boolean, nullable=False),
    Column("forced", Boolean, nullable=False, comment="Planned although the send gate was closed (--force)."),
    Column("refused", Boolean, nullable=False, comment="The gate was closed and nothing was planned."),
    Column("gate_reasons", Text),
    Column("entered", BigInteger, nullable=False),
    Column("planned", BigInteger, nullable=False),
    Column("skipped", BigInteger, nullable=False),
    Column("purged", BigInteger, nullable=False),
)

purged_customers = Table(
    "purged_customers",
    metadata,
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("purged_on", Date, primary_key=True),
    Column("reason", String(32), nullable=False, comment="deep_churn_no_response | rejected_applicant"),
    Column("campaign_id", String(64)),
    Column("archive_key", String(256), nullable=False, comment="Archive file in the artifacts location."),
    Column("restored_on", Date, comment="Back in the active base from this day (crm campaigns restore)."),
)

# The welcome chain's trigger reads who registered on a day (ingestion's table, campaigns' lookup).
Index(None, history["customers"].c.registered_at)
