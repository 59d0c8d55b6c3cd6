"""The send gate: a business day is fit for sending only when every required check says so.

Quality (critical expectations) and reconciliation (source vs warehouse) each record a verdict
per `as_of`; campaign sends read `read_send_gate` and refuse to send when it is closed, while
analytics may still run and label their output as built on suspect data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from sqlalchemy import Connection, select

from crm.core.db import upsert
from models.gate import day_verdicts


class Check(StrEnum):
    """A check whose verdict the send gate requires."""

    QUALITY = "quality"
    RECONCILIATION = "reconciliation"


@dataclass(frozen=True)
class SendGate:
    """Whether a day's data may drive sends, and why not."""

    as_of: date
    is_open: bool
    reasons: list[str] = field(default_factory=list)


def record_verdict(conn: Connection, as_of: date, check: Check | str, *, fit_for_sending: bool, summary: str) -> None:
    """Replace the verdict of one check for one business day."""
    try:
        check = Check(check)
    except ValueError:
        raise ValueError(f"unknown check {check!r}; known: {', '.join(Check)}") from None
    row = {"as_of": as_of, "check_name": check.value, "fit_for_sending": fit_for_sending, "summary": summary}
    upsert(conn, day_verdicts, [row])


def read_send_gate(conn: Connection, as_of: date) -> SendGate:
    """Open only if every required check has run for `as_of` and found the data fit for sending."""
    rows = {r.check_name: r for r in conn.execute(select(day_verdicts).where(day_verdicts.c.as_of == as_of))}
    reasons = []
    for check in Check:
        row = rows.get(check.value)
        if row is None:
            reasons.append(f"{check} has not run for {as_of}")
        elif not row.fit_for_sending:
            reasons.append(f"{check}: {row.summary}")
    return SendGate(as_of=as_of, is_open=not reasons, reasons=reasons)


def gate_headline(gate: SendGate) -> str:
    """One line that says whether the day may send, and why not: `send gate CLOSED for D: reasons`."""
    if gate.is_open:
        return f"send gate OPEN for {gate.as_of}: every check passed"
    return f"send gate CLOSED for {gate.as_of}: " + "; ".join(gate.reasons)


def send_gate_markdown(gate: SendGate, runs: list[dict]) -> str:
    """The night's card: OPEN or CLOSED, the reasons once, and where to look (each job's run and key artifacts).

    `runs`: dicts with `job`, `state` and `run` (a markdown link or a run id), and `artifacts`
    (markdown links or keys). Nothing here repeats the checks' summaries beyond the reasons.
    """
    from crm.core.markdown import markdown_table

    lines = [f"# Send gate {gate.as_of}: {'OPEN' if gate.is_open else 'CLOSED'}", ""]
    if gate.is_open:
        lines.append("Every check passed: the day's data may drive sends.")
    else:
        lines += ["The day's data must not drive sends:", ""]
        lines += [f"- {reason}" for reason in gate.reasons]
    if runs:
        lines += ["", "## Where to look", ""]
        lines += markdown_table(
            [{**r, "artifacts": ", ".join(r.get("artifacts", []))} for r in runs], ["job", "state", "run", "artifacts"]
        )
    return "\n".join(lines)


# Run states that say a day's send gate is closed (the checks' own state names).
CLOSED_STATES = ("GateClosed", "Diverged", "FilesRejected")
GATE_JOBS = ("nightly", "quality", "reconcile")
# Run states of a day that did its work and found something (a backfill counts it done and goes on):
# the closed gates, and a stored segments day that recomputes differently.
FINDING_STATES = (*CLOSED_STATES, "Differs")


def gate_of(job: str, state: str) -> str:
    """OPEN, CLOSED, or blank (the job does not decide the gate, or the run did not finish)."""
    if state in CLOSED_STATES:
        return "CLOSED"
    return "OPEN" if job in GATE_JOBS and state == "Completed" else ""


def backfill_headline(job: str, planned: int, outcomes: list[dict]) -> str:
    """`3 of 3 days, 3 gates closed`: days done of those planned, and the gates' count."""
    done = sum(1 for o in outcomes if o["state"] == "Completed" or o["state"] in FINDING_STATES)
    text = f"{done} of {planned} days"
    if job in GATE_JOBS or any(o["state"] in CLOSED_STATES for o in outcomes):
        closed = sum(1 for o in outcomes if gate_of(job, o["state"]) == "CLOSED")
        opened = sum(1 for o in outcomes if gate_of(job, o["state"]) == "OPEN")
        text += f", {closed} gate{'s' if closed != 1 else ''} closed"
        if opened:
            text += f", {opened} open"
    return text
