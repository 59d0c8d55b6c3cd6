"""The `loyalty` flow end to end on a simulated company (SQLite and PostgreSQL): catch-up, re-runs, reports, findings."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import insert
from typer.testing import CliRunner

from cli import app
from crm.core.settings import get_settings, make_engine
from crm.loyalty import ledger_snapshot
from flows.loyalty import loyalty
from models.loyalty import loyalty_ledger
from tests.flows.test_reconcile_flow import artifact_keys
from tests.simulated import START, ingest_days, simulate_company

DAYS = 12


def test_loyalty_catches_up_reruns_add_nothing_and_reports(backend):
    simulate_company(backend.source_url, backend.landing_url, customers=150, days=DAYS)
    last = START + timedelta(days=DAYS - 1)
    ingest_days(START, last)

    first = loyalty(as_of=START + timedelta(days=2))  # the first run posts everything ingested by its day
    assert first["days"] == [str(START + timedelta(days=2))] and first["entries_added"] > 0
    state = loyalty(as_of=last, return_state=True)  # catches up the days missed since
    outcome = state.result()
    assert outcome["days"] == [str(START + timedelta(days=i)) for i in range(3, DAYS)]
    assert outcome["liability_minor"] > 0
    snapshot = ledger_snapshot(make_engine(backend.warehouse_url))
    assert len(snapshot["loyalty_tiers"]) >= 100 and set(snapshot["loyalty_events"]["event"]) >= {
        "joined",
        "cashback_accrued",
    }

    artifacts = artifact_keys(state.state_details.flow_run_id)
    assert {"loyalty-report", "loyalty-flows"} <= set(artifacts)
    report = artifacts["loyalty-report"]
    assert "## Liability" in report and "## Tier migration" in report and "Invariants: all hold." in report
    chart = Path(get_settings().reports) / "loyalty" / str(last) / "cashback-per-day.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = loyalty(as_of=last)  # re-run of the newest day
    past = loyalty(as_of=START + timedelta(days=5))  # recalculation of a past day
    assert again["entries_added"] == past["entries_added"] == 0
    for name, frame in ledger_snapshot(make_engine(backend.warehouse_url)).items():
        pd.testing.assert_frame_equal(frame, snapshot[name], obj=name)


def test_a_broken_invariant_fails_the_run_with_a_finding(sqlite_backend):
    simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=60, days=3)
    day = START + timedelta(days=2)
    ingest_days(START, day)
    assert CliRunner().invoke(app, ["run", "loyalty", "--as-of", str(day)]).exit_code == 0
    engine = make_engine(sqlite_backend.warehouse_url)
    with engine.begin() as conn:
        member = conn.execute(loyalty_ledger.select().limit(1)).mappings().one()
        conn.execute(
            insert(loyalty_ledger).values(
                entry_id="tampered",
                customer_id=member["customer_id"],
                as_of=member["as_of"],
                kind="redemption",
                amount_minor=-(10**9),
                source_kind="order",
                source_key="nowhere",
                expires_on=None,
                rule="written by hand",
            )
        )
    result = CliRunner().invoke(app, ["run", "loyalty", "--as-of", str(date.fromisoformat(str(member["as_of"])))])
    assert result.exit_code == 2, result.output
    assert "invariants violated" in result.output and "negative balance" in result.output
