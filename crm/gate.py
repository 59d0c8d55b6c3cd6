"""The send gate: a business day is fit for sending only when every required check says so.

Quality (critical expectations) and reconciliation (source vs warehouse) each record a verdict
per `as_of`; campaign sends read `read_send_gate` and refuse to send when it is closed, while
analytics may still run and label their output as built on suspect data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, delete, select

from crm.db import upsert
from models.warehouse import day_verdicts

REQUIRED_CHECKS = ("quality", "reconciliation")


@dataclass(frozen=True)
class SendGate:
    """Whether a day's data may drive sends, and why not."""

    as_of: date
    is_open: bool
    reasons: list[str] = field(default_factory=list)


def record_verdict(conn: Connection, as_of: date, check_name: str, *, fit_for_sending: bool, summary: str) -> None:
    """Replace the verdict of one check for one business day."""
    if check_name not in REQUIRED_CHECKS:
        raise ValueError(f"unknown check {check_name!r}; known: {', '.join(REQUIRED_CHECKS)}")
    upsert(conn, day_verdicts, [{"as_of": as_of, "check_name": check_name, "fit_for_sending": fit_for_sending, "summary": summary}])


def clear_verdicts(conn: Connection, as_of: date) -> None:
    """Forget every verdict of a day (e.g. before re-ingesting it)."""
    conn.execute(delete(day_verdicts).where(day_verdicts.c.as_of == as_of))


def read_send_gate(conn: Connection, as_of: date) -> SendGate:
    """Open only if every required check has run for `as_of` and found the data fit for sending."""
    rows = {r.check_name: r for r in conn.execute(select(day_verdicts).where(day_verdicts.c.as_of == as_of))}
    reasons = []
    for check in REQUIRED_CHECKS:
        row = rows.get(check)
        if row is None:
            reasons.append(f"{check} has not run for {as_of}")
        elif not row.fit_for_sending:
            reasons.append(f"{check}: {row.summary}")
    return SendGate(as_of=as_of, is_open=not reasons, reasons=reasons)
