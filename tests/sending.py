"""Helpers for sending tests: a hand-built warehouse (contacts, ingested days, the gate), planned messages,
an SMTP server on localhost (aiosmtpd) that records what it received."""

from __future__ import annotations

import email
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, insert

from crm.core.contracts import CUSTOMER_CONTACTS
from crm.core.db import write_frame
from crm.core.gate import Check, record_verdict
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.ingest import record_versions
from models.ingest import ingest_batches, staging

DAY = date(2026, 2, 10)


def warehouse(url: str) -> Engine:
    """The migrated warehouse behind `url`."""
    engine = make_engine(url)
    upgrade_warehouse(engine)
    return engine


def seed_contacts(engine: Engine, rows: list[tuple], *, ingested_on: date = DAY) -> None:
    """Contacts as ingestion would write them (latest row and its version): (customer_id, channel, address, consented, updated_at)."""
    frame = pd.DataFrame(rows, columns=["customer_id", "channel", "address", "is_consented", "updated_at"])
    frame["updated_at"] = pd.to_datetime(frame["updated_at"])
    frame = frame.astype({"customer_id": "int64"})
    with engine.begin() as conn:
        latest = frame.sort_values("updated_at").drop_duplicates(["customer_id", "channel"], keep="last")
        write_frame(
            conn,
            staging["customer_contacts"],
            latest.assign(ingested_on=pd.Timestamp(ingested_on)),
            on_conflict="update",
        )
        for _, versions in frame.groupby("updated_at", sort=True):
            record_versions(conn, CUSTOMER_CONTACTS, versions, ingested_on)


def consented_contacts(customers, channel: str = "sms", *, at: datetime = datetime(2026, 1, 5, 12)) -> list[tuple]:
    """One consented contact per customer on `channel`, with an address derived from the id."""
    return [(c, channel, address(c, channel), True, at) for c in customers]


def address(customer_id: int, channel: str) -> str:
    """The test address of a customer on a channel."""
    if channel == "email":
        return f"user{customer_id}@example.com"
    if channel == "sms":
        return f"+38067{customer_id:07d}"
    return f"{customer_id:032x}"


def mark_ingested(engine: Engine, day: date) -> None:
    """Record that ingestion ran for `day` (what "the newest ingested day" is read from)."""
    with engine.begin() as conn:
        conn.execute(
            insert(ingest_batches).values(
                as_of=day,
                source="db:customers",
                entity="customers",
                rows_read=0,
                rows_loaded=0,
                rows_quarantined=0,
                rows_duplicate=0,
            )
        )


def set_gate(engine: Engine, day: date, *, fit: bool = True) -> None:
    """Record quality and reconciliation verdicts for `day` (the send gate opens only when both are fit)."""
    with engine.begin() as conn:
        record_verdict(conn, day, Check.QUALITY, fit_for_sending=fit, summary="test: fit" if fit else "test: broken")
        record_verdict(conn, day, Check.RECONCILIATION, fit_for_sending=True, summary="test: reconciled")


def planned(
    day: date, customers, channel: str = "sms", *, campaign: str = "reactivation", step: int = 1, wave: int = 1, **extra
) -> pd.DataFrame:
    """A frame of planned messages as campaign planning hands them to `enqueue_messages`."""
    customers = list(customers)
    frame = pd.DataFrame(
        {
            "as_of": day,
            "campaign_id": campaign,
            "step": step,
            "wave": wave,
            "customer_id": customers,
            "channel": channel,
            "template_id": f"{campaign}-{step}",
            "params": [{"promo": f"P{c}"} for c in customers],
            "consent_decision": "consented",
        }
    )
    for column, value in extra.items():
        frame[column] = value
    return frame


def seed_outbox(url: str, customers, channel: str = "sms", *, day: date = DAY) -> Engine:
    """A migrated warehouse with consented contacts, the day ingested, its gate open and messages planned."""
    from crm.sending import enqueue_messages

    engine = warehouse(url)
    customers = list(customers)
    seed_contacts(engine, consented_contacts(customers, channel))
    mark_ingested(engine, day)
    set_gate(engine, day)
    with engine.begin() as conn:
        enqueue_messages(conn, planned(day, customers, channel), prices={"push": 1, "email": 3, "sms": 150})
    return engine


def days_after(day: date, n: int) -> date:
    """`n` days after `day`."""
    return day + timedelta(days=n)


# --------------------------------------------------------------------------- SMTP on localhost


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpRecorder:
    """An aiosmtpd handler that records every accepted message and can refuse or defer recipients on purpose."""

    reject: set[str] = field(default_factory=set)  # 550 for these recipients
    defer: dict[str, int] = field(default_factory=dict)  # 451 this many times, then accept
    received: list[dict] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 no such user"
        if self.defer.get(address, 0) > 0:
            self.defer[address] -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            self.received.append(
                {
                    "message_id": message["Message-ID"].strip("<>").split("@", 1)[0],
                    "to": envelope.rcpt_tos[0],
                    "subject": message["Subject"],
                    "authenticated": getattr(session, "authenticated", False),
                    "login": getattr(session, "login_data", None),
                    "tls": getattr(session, "ssl", None) is not None,
                }
            )
        return "250 Message accepted"

    def arrivals(self) -> Counter:
        """How many times each message id arrived."""
        with self.lock:
            return Counter(r["message_id"] for r in self.received)
