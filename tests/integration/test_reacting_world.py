"""Outbox to provider to world to delivery reports and back: the reports ingested match what the world did."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import select

from crm.core.settings import make_engine, warehouse_engine
from crm.core.storage import open_store
from crm.sending import (
    FileExportProvider,
    FileProviderConfig,
    apply_delivery_reports,
    default_export_url,
    dispatch_messages,
    enqueue_messages,
    read_funnel,
)
from crm.simulator import read_received, simulate
from models import source as src
from models.sending import outbox
from tests.sending import planned
from tests.simulated import START, ingest_days, simulate_company


def test_the_reports_of_what_the_world_received_bring_the_outbox_to_the_worlds_truth(backend):
    summary = simulate_company(backend.source_url, backend.landing_url, customers=300, days=6)
    day = summary.last_day
    ingest_days(START, day)
    engine = warehouse_engine()
    with engine.begin() as conn:
        enqueue_messages(
            conn, pd.concat([planned(day, range(1, 301), "sms"), planned(day, range(1, 301), "email", step=2)])
        )
    inbox = open_store(default_export_url())
    provider = FileExportProvider("file-export", FileProviderConfig(), inbox)
    counts = dispatch_messages(engine, provider, day, ["push", "email", "sms"], run_label="test")
    assert counts.sent > 100

    later = simulate(make_engine(backend.source_url), open_store(backend.landing_url), days=2, inbox=inbox)
    ingest_days(day + timedelta(days=1), later.last_day)
    applied = apply_delivery_reports(engine, later.last_day, since=day + timedelta(days=1))
    assert applied["delivered"] > 0

    with make_engine(backend.source_url).connect() as conn:
        truth = pd.DataFrame(conn.execute(select(src.simulated_reactions)).mappings().all()).set_index("message_id")
    with engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(select(outbox).where(outbox.c.state != "skipped")).mappings().all())
        funnel = read_funnel(conn, day, day)
    rows = rows.set_index("message_id")
    assert set(rows.index) == set(truth.index)  # the world received exactly what was sent
    truth = truth.loc[rows.index]
    assert (rows["delivered_at"].notna() == truth["delivered"]).all()
    assert (rows["bounced_at"].notna() == ~truth["delivered"]).all()
    assert (rows["opened_at"].notna() == truth["opened"]).all()
    assert (rows["clicked_at"].notna() == truth["clicked"]).all()
    assert (rows["unsubscribed_at"].notna() == truth["unsubscribed"]).all()
    expected_state = pd.Series("delivered", index=truth.index).mask(~truth["delivered"], "bounced")
    expected_state = expected_state.mask(truth["opened"], "opened").mask(truth["clicked"], "clicked")
    assert (rows["state"] == expected_state).all()
    assert int(funnel["delivered"].sum()) == int(truth["delivered"].sum())
    assert int(funnel["sent"].sum()) == len(truth)

    # A second wave, planned and sent after the unsubscribes: checked against what the provider received,
    # no message reaches a contact the back end (the source of truth) holds without consent.
    unsubscribed = truth[truth["unsubscribed"]]
    assert len(unsubscribed) > 0
    last = later.last_day
    with engine.begin() as conn:
        enqueue_messages(
            conn,
            pd.concat([planned(last, range(1, 301), "sms", wave=2), planned(last, range(1, 301), "email", wave=2)]),
        )
    dispatch_messages(engine, FileExportProvider("file-export", FileProviderConfig(), inbox), last, ["email", "sms"])
    received = read_received(inbox, last)
    with make_engine(backend.source_url).connect() as conn:
        contacts = pd.DataFrame(conn.execute(select(src.tables["customer_contacts"])).mappings().all())
    consent = contacts.set_index(["customer_id", "channel"])["is_consented"]
    reached = list(zip(received["customer_id"], received["channel"], strict=True))
    assert len(reached) > 100 and all(consent.loc[key] for key in reached)
    assert not set(zip(unsubscribed["customer_id"], unsubscribed["channel"], strict=True)) & set(reached)
