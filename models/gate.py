"""The send gate's table: each check's verdict per business day."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, String, Table, Text

from models.base import metadata

day_verdicts = Table(
    "day_verdicts",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("check_name", String(32), primary_key=True, comment="quality | reconciliation"),
    Column("fit_for_sending", Boolean, nullable=False),
    Column("summary", Text, nullable=False, comment="Why, in one paragraph a CRM manager can read."),
)

# A backfill's progress: one row per day it completed, so a backfill killed or failed half way
# resumes from the first day not completed (`crm backfill` with the same job, range and steps).
backfill_days = Table(
    "backfill_days",
    metadata,
    Column("backfill", String(256), primary_key=True, comment="job:start..end[:steps] (the backfill's identity)."),
    Column("as_of", Date, primary_key=True),
    Column("state", String(32), nullable=False, comment="The day's final state (Completed, GateClosed, ...)."),
    Column("run_id", String(64), comment="Its flow run, to open in the Prefect UI."),
)
