"""Benchmark: dispatch from the outbox to a local HTTP provider (batch endpoint) and to a local SMTP server.

Each provider runs in its own process; the dispatch runs here (claims, sends, records in the
warehouse, exactly as in production). Run by hand, not in CI:
    python benchmarks/bench_dispatch.py --messages 100000 --backend sqlite
    python benchmarks/bench_dispatch.py --messages 100000 --backend postgresql --smtp-messages 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text

from crm.core.contracts import CUSTOMER_CONTACTS
from crm.core.db import write_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.ingest import record_versions
from crm.sending import (
    HttpProvider,
    HttpProviderConfig,
    SmtpProvider,
    SmtpProviderConfig,
    dispatch_messages,
    enqueue_messages,
)
from models.ingest import staging

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY = date(2026, 2, 10)

HTTP_SERVER = """
import json, sys, time
from crm.simulator import LocalProvider
provider = LocalProvider(port=0).start()
print(provider.url, flush=True)
sys.stdin.read()
"""

SMTP_SERVER = """
import sys
from aiosmtpd.controller import Controller

class Count:
    def __init__(self):
        self.n = 0
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        return "250 OK"

import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
handler = Count()
controller = Controller(handler, hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
sys.stdin.read()
print(handler.n, flush=True)
controller.stop()
"""


def warehouse(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'warehouse.db'}"
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def seed(engine, customers: int, channel: str, first_id: int) -> float:
    """Consented contacts and planned messages for `customers` customers on `channel`; return the enqueue time."""
    ids = range(first_id, first_id + customers)
    contacts = pd.DataFrame(
        {
            "customer_id": list(ids),
            "channel": channel,
            "address": [f"user{i}@example.com" if channel == "email" else f"+38067{i:07d}" for i in ids],
            "is_consented": True,
            "updated_at": pd.Timestamp("2026-01-05 12:00"),
        }
    )
    with engine.begin() as conn:
        write_frame(
            conn, staging["customer_contacts"], contacts.assign(ingested_on=pd.Timestamp(DAY)), on_conflict="update"
        )
        record_versions(conn, CUSTOMER_CONTACTS, contacts, DAY)
    frame = pd.DataFrame(
        {
            "as_of": DAY,
            "campaign_id": "bench",
            "step": 1,
            "wave": 1,
            "customer_id": list(ids),
            "channel": channel,
            "template_id": "bench-1",
            "params": [{"promo": f"P{i}"} for i in ids],
            "consent_decision": "consented",
        }
    )
    started = time.perf_counter()
    with engine.begin() as conn:
        enqueue_messages(conn, frame, prices={"push": 1, "email": 3, "sms": 150})
    return time.perf_counter() - started


def server(code: str) -> tuple[subprocess.Popen, str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    return process, process.stdout.readline().strip()


def now() -> datetime:
    return datetime(2026, 2, 11, 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--smtp-messages", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--smtp-concurrency", type=int, default=4)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    url = warehouse(args.backend, workdir)
    engine = make_engine(url)
    upgrade_warehouse(engine)
    results: dict = {"backend": args.backend}

    results["enqueue_s"] = round(seed(engine, args.messages, "sms", 1), 2)
    process, base = server(HTTP_SERVER)
    config = HttpProviderConfig(
        url=f"{base}/messages",
        batch_url=f"{base}/messages/batch",
        batch_size=args.batch_size,
        max_concurrency=args.concurrency,
        rate_per_second=1_000_000,
    )
    provider = HttpProvider("bench-http", config)
    started = time.perf_counter()
    counts = dispatch_messages(engine, provider, DAY, ["sms"], chunk_rows=args.chunk_rows, now=now)
    took = time.perf_counter() - started
    provider.close()
    stats = json.loads(urllib.request.urlopen(f"{base}/stats").read())
    process.stdin.close()
    process.wait()
    assert stats["delivered"] == counts.sent == args.messages, (stats, counts)
    results["http"] = {
        "messages": counts.sent,
        "seconds": round(took, 2),
        "msgs_per_s": round(counts.sent / took),
        "requests": stats["requests"],
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
    }

    if args.smtp_messages:
        seed(engine, args.smtp_messages, "email", 10_000_000)
        process, port = server(SMTP_SERVER)
        smtp = SmtpProvider(
            "bench-smtp",
            SmtpProviderConfig(
                host="127.0.0.1",
                port=int(port),
                security="none",
                batch_size=100,
                max_concurrency=args.smtp_concurrency,
                rate_per_second=1_000_000,
            ),
        )
        started = time.perf_counter()
        counts = dispatch_messages(engine, smtp, DAY, ["email"], chunk_rows=args.chunk_rows, now=now)
        took = time.perf_counter() - started
        smtp.close()
        process.stdin.close()
        received = int(process.stdout.readline())
        process.wait()
        assert received == counts.sent == args.smtp_messages, (received, counts)
        results["smtp"] = {
            "messages": counts.sent,
            "seconds": round(took, 2),
            "msgs_per_s": round(counts.sent / took),
            "connections": args.smtp_concurrency,
        }
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))
    engine.dispose()
    if args.backend == "postgresql":
        name = url.rsplit("/", 1)[1]
        with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
